"""What Twilio's refusals tell us about a number, and the texts refused before they cost anything.

Twilio refuses a text to a number that replied STOP to the sender (21610), and one to a number
that is not valid or not mobile (21211, 21614); carriers report later that a text could not be
delivered (30003 unreachable, 30005 unknown, 30006 landline). Each is written to the number's
conversations, so that the next text to it is refused here, before any request to Twilio: a
text Twilio refuses, or a carrier drops, may still be billed, and retrying never helps.
"""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.db.models import CharField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from conversations.phone import number_of

OPTED_OUT = 21610
BATCH = 500  # Pairs per query: two numbers each, under SQLite's 999 variables of old versions.
# The number cannot get texts: invalid, not mobile, unreachable, unknown, a landline.
UNDELIVERABLE = frozenset({21211, 21614, 30003, 30005, 30006})
# Twilio's words for the delivery errors a status callback names only by their code.
DELIVERY_ERRORS = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "US A2P 10DLC - Message from an Unregistered Number",
}
# Twilio's words for the codes its refusals and callbacks give most (the dashboard names them).
TWILIO_ERRORS = {
    20429: "Too Many Requests",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    **DELIVERY_ERRORS,
}


class Refusal(str):
    """Why a text is refused, in words staff can act on; `kind` says which of the reasons."""

    BLOCKED, UNDELIVERABLE, OPTED_OUT = "blocked", "undeliverable", "opted_out"
    kind: str

    def __new__(cls, words: str, kind: str) -> Refusal:
        refusal = super().__new__(cls, words)
        refusal.kind = kind
        return refusal


def twilio_error(code: int, words: str = "") -> str:
    """ "Twilio error 30003: Unreachable destination handset", as records keep it."""
    words = words or DELIVERY_ERRORS.get(code, "")
    return f"Twilio error {code}: {words}"[:200] if words else f"Twilio error {code}"


def conversations_of(their_number: str) -> QuerySet[Conversation]:
    """Every conversation with this number, whichever of our numbers and channel it used."""
    number = number_of(their_number)
    if number is None:  # A sender ID, or a number that is not one: only its own pairs.
        return Conversation.objects.filter(sender=their_number)
    return Conversation.objects.filter(Q(sender_number=number) | Q(sender=their_number))


def undeliverable_mark(their_number: str, reason: str) -> int:
    """Mark the number undeliverable on all its conversations; the first time it was is kept."""
    return conversations_of(their_number).update(
        undeliverable_reason=reason[:200],
        undeliverable_since=Coalesce("undeliverable_since", Value(timezone.now())),
    )


def delivery_failed(sid: str, code: int) -> None:
    """A carrier could not deliver one of our texts: its recipient is undeliverable."""
    outbound = Message.objects.filter(sid=sid, direction=Message.Direction.OUTBOUND)
    message = outbound.select_related("conversation").first()
    if message is not None:
        undeliverable_mark(message.conversation.sender, twilio_error(code))


def deliverable_mark(conversations: QuerySet[Conversation]) -> int:
    """Staff know better (a new phone, a typo fixed at the carrier): texts may go again."""
    senders = conversations.values_list("sender", flat=True)
    cleared = Conversation.objects.none()
    for sender in set(senders):
        cleared |= conversations_of(sender)
    return cleared.update(undeliverable_reason="", undeliverable_since=None)


def opted_out_mark(their_number: str, our_number: str) -> int:
    """Twilio says the number replied STOP to ours: the pair is opted out until START, and
    its texts still waiting (pending, scheduled) are canceled."""
    pairs = conversations_of(their_number)
    if our_number:
        pairs = pairs.filter(recipient=our_number)
    marked = pairs.update(opted_out=True)
    opted_out_cancel(pairs)
    return marked


def opted_out_cancel(conversations: QuerySet[Conversation]) -> int:
    """Cancel the texts waiting for these opted-out conversations, saying why; return how many."""
    waiting = Message.objects.filter(
        conversation__in=conversations, direction=Message.Direction.OUTBOUND, status__in=Message.READY
    )
    reason = f"Canceled: the recipient replied STOP on {timezone.localtime():%Y-%m-%d %H:%M}."
    return waiting.update(status=Message.Status.CANCELED, error=reason)


def stop_received(conversation: Conversation) -> int:
    """A STOP from the pair's sender: cancel the texts waiting for them. Through a Messaging
    Service, whose pool may send from any of our numbers, those of every pair of the number."""
    if settings.TWILIO_MESSAGING_SERVICE_SID:
        return opted_out_cancel(conversations_of(conversation.sender))
    return opted_out_cancel(Conversation.objects.filter(pk=conversation.pk))


def sending_refusals(
    pairs: Collection[tuple[str, str]], *, through_service: bool
) -> dict[tuple[str, str], Refusal]:
    """Why texts to these (our number, their number) pairs would be refused, by pair; the
    others may be sent. Two queries per BATCH pairs: a blocked Caller, a number marked
    undeliverable, a pair (or, through a Messaging Service, any pair of the number) opted out."""
    listed = list(pairs)
    refused: dict[tuple[str, str], Refusal] = {}
    for start in range(0, len(listed), BATCH):  # SQLite's limit of variables in a statement.
        refused.update(_refusals(listed[start : start + BATCH], through_service=through_service))
    return refused


def _refusals(pairs: Collection[tuple[str, str]], *, through_service: bool) -> dict[tuple[str, str], Refusal]:
    number_by = {their: number_of(their) for _, their in pairs}
    numbers = {number for number in number_by.values() if number is not None}
    # Read as text, the column as it is stored (E.164): PhoneNumberField would parse and
    # validate each number of the lookup again (~100 µs each). The SQL is the bare column.
    stored = ExpressionWrapper(F("phone_number"), output_field=CharField())
    blocked = set(
        Caller.objects.filter(blocked=True)
        .annotate(stored=stored)
        .filter(stored__in=numbers)
        .values_list("stored", flat=True)
    )
    # A conversation's sender_number is number_of(its sender): a sender already in E.164 is
    # found by it, and only the others (channels, sender IDs, other forms) need their own.
    others = {their for their, number in number_by.items() if number != their}
    marked = Conversation.objects.filter(Q(sender_number__in=numbers) | Q(sender__in=others)).filter(
        Q(opted_out=True) | ~Q(undeliverable_reason="")
    )
    undeliverable: dict[str, Conversation] = {}
    opted_out: set[tuple[str, str]] = set()  # (our number, their number or sender); "" for any of ours.
    for row in marked.only(
        "sender", "sender_number", "recipient", "opted_out", "undeliverable_reason", "undeliverable_since"
    ):
        keys = {row.sender, row.sender_number} - {""}
        if row.undeliverable_reason:
            for key in keys:
                undeliverable.setdefault(key, row)
        if row.opted_out:
            opted_out |= {("" if through_service else row.recipient, key) for key in keys}
    refused: dict[tuple[str, str], Refusal] = {}
    for our, their in pairs:
        keys = {their, number_by[their] or ""} - {""}
        if keys & blocked:
            refused[our, their] = Refusal(
                f"{their} is a blocked caller: texts to them are not sent.", Refusal.BLOCKED
            )
        elif found := next((undeliverable[key] for key in keys if key in undeliverable), None):
            since = timezone.localtime(found.undeliverable_since or timezone.now())
            refused[our, their] = Refusal(
                f"{their} is marked undeliverable since {since:%Y-%m-%d %H:%M}: "
                f"{found.undeliverable_reason}. Texts to it are not sent; clear the mark "
                "in the admin once the number is fixed.",
                Refusal.UNDELIVERABLE,
            )
        elif {("" if through_service else our, key) for key in keys} & opted_out:
            refused[our, their] = Refusal(
                f"{their} has opted out (replied STOP); Twilio would refuse the text. "
                "They can text START to opt back in.",
                Refusal.OPTED_OUT,
            )
    return refused
