from django.conf import settings
from django.db import migrations, models


def number_of(address: str) -> str | None:
    # A frozen copy of conversations.phone.number_of, as it was when the column was added.
    import phonenumbers

    number = address.rpartition(":")[2].strip()
    try:
        parsed = phonenumbers.parse(number, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    usable = phonenumbers.is_possible_number if number.startswith("+") else phonenumbers.is_valid_number
    if not usable(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def fill_sender_numbers(apps, schema_editor) -> None:
    Conversation = apps.get_model("conversations", "Conversation")
    batch = []
    for conversation in Conversation.objects.only("pk", "sender").iterator(chunk_size=2000):
        conversation.sender_number = number_of(conversation.sender) or ""
        batch.append(conversation)
        if len(batch) == 2000:
            Conversation.objects.bulk_update(batch, ["sender_number"])
            batch = []
    Conversation.objects.bulk_update(batch, ["sender_number"])


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0005_caller_name_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="sender_number",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The sender's E.164 number; empty for sender IDs.",
                max_length=16,
            ),
        ),
        migrations.RunPython(fill_sender_numbers, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="conversation",
            index=models.Index(fields=["sender_number"], name="conversation_sender_number"),
        ),
    ]
