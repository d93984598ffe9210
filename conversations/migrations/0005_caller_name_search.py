import unicodedata

from django.db import migrations, models


def search_key(text: str) -> str:
    # A frozen copy of conversations.models.search_key, as it was when the column was added.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def fold_names(apps, schema_editor) -> None:
    Caller = apps.get_model("conversations", "Caller")
    batch = []
    for caller in Caller.objects.only("pk", "name").iterator(chunk_size=2000):
        caller.name_search = search_key(caller.name)
        batch.append(caller)
        if len(batch) == 2000:
            Caller.objects.bulk_update(batch, ["name_search"])
            batch = []
    Caller.objects.bulk_update(batch, ["name_search"])


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0004_message_simulated_sent_by"),
    ]

    operations = [
        migrations.AddField(
            model_name="caller",
            name="name_search",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(fold_names, migrations.RunPython.noop, elidable=True),
    ]
