"""The outbox's worker: claim a row, POST it once, commit Twilio's answer.

At most one POST per row: the claim (`sending`, one more attempt, claimed_at) is committed
before the REST call and Twilio's answer after it, each in a short transaction of its own
through the same writer lock as the webhook's texts (in_pair_transaction), never held during
the call. What Twilio's answer means (twilio_api.py):

- accepted: its SID and status, and the pair's window opened or refreshed (pairs.py);
- refused: `failed` with the reason, fed back to the number as before (refusals.py);
- not processed (429, no connection): `pending` again after an exponential backoff with
  jitter, at most SEND_ATTEMPTS tries, then `failed` with the last error;
- in doubt (timeout after sending, connection lost, 5xx): `unknown`, never sent again by
  itself; the status callback, whose URL names the row, fills in what Twilio had.

A row left `sending` by a worker that died is `unknown` after a while: its POST may have gone.
A text is checked again just before it goes: opted out or undeliverable meanwhile, `canceled`.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone
from twilio.rest import Client

from conversations.broadcast_control import broadcast_started, broadcasts_complete
from conversations.metrics import text_sent, worker_beat
from conversations.models import Message
from conversations.outbox_sql import claim, next_claimable
from conversations.pacing import PACE_AHEAD, Slot, pace_reserve
from conversations.pairs import in_pair_transaction, outbound_accepted
from conversations.phone import mask
from conversations.refusals import (
    OPTED_OUT,
    UNDELIVERABLE,
    opted_out_mark,
    sending_refusals,
    twilio_error,
    undeliverable_mark,
)
from conversations.segments import segments_of
from conversations.tasks import outbox_help, outbox_successor, outbox_wake
from conversations.twilio_api import InDoubt, Refused, TryLater, text_post, twilio_session

logger = logging.getLogger(__name__)
Status = Message.Status

# One tick sends for this long at most, then hands over to the next: a worker asked to stop
# (Ctrl-C, a deploy) finishes its tick soon.
TICK_SECONDS = 10.0
# Backoff of a text Twilio did not process: 1 s, 2 s, 4 s ... at most 5 minutes, with jitter.
RETRY_FIRST, RETRY_MOST = 1.0, 300.0
# A claimed row's POST is over after two TWILIO_TIMEOUTs (connect, then read); past this
# margin more, the worker that claimed it is gone.
STALE_MARGIN = 10.0
# A tick behind the pace asks for a helper at most this often (tasks.outbox_help).
HELP_ASKED_EVERY = 1.0
CANCELED = "canceled"
RETRY = "retry"  # Twilio did not process it: tried again after a backoff (sms_texts_sent_total).


def outbox_drain(seconds: float = TICK_SECONDS) -> int:
    """Send the texts that may go now, for `seconds` at most; return how many were POSTed."""
    until = time.monotonic() + seconds
    if stale := in_pair_transaction(_stale_mark):
        text_sent(Status.UNKNOWN, count=stale)
    posted, helped, ask_help_at = 0, False, 0.0
    with twilio_session() as client:
        while (left := until - time.monotonic()) > 0:
            claimed = in_pair_transaction(_claim_next)
            if claimed is None:
                break
            if isinstance(claimed, str):  # CANCELED
                text_sent(CANCELED)
                continue
            if isinstance(claimed, float):
                # The sender's slots are taken as far ahead as may be (PACE_AHEAD): the other
                # ticks keep up. Waking just as the next one comes within reach would have every
                # idle tick try for each slot, a claim in the writer lock each, 50 times a second
                # at 50/s; a random part of PACE_AHEAD more spreads them out, and the slots
                # already taken keep the pace meanwhile.
                time.sleep(min(claimed + random.uniform(0, PACE_AHEAD / 2), left))
                continue
            message, slot = claimed
            if slot.late and not helped and time.monotonic() >= ask_help_at:
                # Not for every late text while a helper waits for a free process: asking
                # is a transaction in the writer lock, and the answer holds for a while.
                ask_help_at = time.monotonic() + HELP_ASKED_EVERY
                helped = in_pair_transaction(_help_wanted)
            time.sleep(max(slot.at - time.time(), 0))  # The slot reserved for it (pacing.py).
            _send(client, message)
            worker_beat()  # A tick that sends for long still beats.
            posted += 1
        else:
            # Out of time with texts to go: a successor of its own goes on at once, so that as
            # many ticks send as did.
            in_pair_transaction(outbox_successor)
    in_pair_transaction(broadcasts_complete)
    _wake_for_later()
    return posted


def status_callback_url(message: Message) -> str | None:
    """Where Twilio reports on the text, naming its row, when the app's public URL is known."""
    if not settings.TWILIO_WEBHOOK_BASE_URL:
        return None
    return f"{settings.TWILIO_WEBHOOK_BASE_URL.rstrip('/')}/sms/status/?outbox={message.pk}"


def _stale_mark() -> int:
    stale = timedelta(seconds=2 * settings.TWILIO_TIMEOUT + STALE_MARGIN)
    left_behind = Message.objects.sending().filter(sid__isnull=True, claimed_at__lt=timezone.now() - stale)
    return left_behind.update(
        status=Status.UNKNOWN,
        error="The worker stopped while sending it: Twilio may have it. Re-send only if it did not arrive.",
    )


def _help_wanted() -> bool:
    """A helper tick when more texts wait than this one can send at the pace (tasks.py)."""
    return Message.objects.ready(timezone.now()).exists() and outbox_help()


def _claim_next() -> tuple[Message, Slot] | float | str | None:
    """The next text to POST, claimed, and its sender's slot for it; or seconds to wait for
    the sender's pace; or None."""
    now = timezone.now()
    claimable = next_claimable(now)
    if claimable is None:
        return None
    message = claimable.message
    our, their = message.conversation.recipient, message.conversation.sender
    if claimable.maybe_refused:
        through_service = bool(settings.TWILIO_MESSAGING_SERVICE_SID)
        if why := sending_refusals([(our, their)], through_service=through_service).get((our, their)):
            Message.objects.filter(pk=message.pk).update(status=Status.CANCELED, error=why[:200])
            return CANCELED
    claim(message, now)
    if message.broadcast_id is not None:
        broadcast_started(message.broadcast_id, now)
    # The pace last: its row stays locked until this transaction commits, and every worker
    # sending for the sender waits for it. No slot, no claim: the transaction is rolled back.
    sender = settings.TWILIO_MESSAGING_SERVICE_SID or our
    slot = pace_reserve(sender, message.num_segments or segments_of(message.body).count)
    if not isinstance(slot, Slot):
        transaction.set_rollback(True)
        return slot
    return message, slot


def _send(client: Client | None, message: Message) -> None:
    conversation = message.conversation
    ours = "" if conversation.recipient == settings.TWILIO_MESSAGING_SERVICE_SID else conversation.recipient
    try:
        accepted = text_post(
            client,
            our_number=ours,
            their_number=conversation.sender,
            body=message.body,
            status_callback=status_callback_url(message),
        )
    except TryLater as failure:
        text_sent(in_pair_transaction(partial(_retry_or_fail, message, str(failure))), failure.code)
    except InDoubt as failure:
        logger.warning("send id=%s to=%s in doubt: %s", message.pk, mask(conversation.sender), failure)
        in_pair_transaction(partial(_finish, message, Status.UNKNOWN, str(failure)))
        text_sent(Status.UNKNOWN)
    except Refused as refusal:
        in_pair_transaction(partial(_refused, message, refusal))
        text_sent(Status.FAILED, refusal.code)
    else:
        outbound_accepted(message, sid=accepted.sid, status=accepted.status, our_number=accepted.our_number)
        text_sent(accepted.status)


def _finish(message: Message, status: str, error: str) -> None:
    # Unless a status callback has told us more meanwhile.
    claimed = Q(status__in=(Status.SENDING, Status.UNKNOWN), sid__isnull=True)
    Message.objects.filter(claimed, pk=message.pk).update(status=status, error=error[:200])


def _retry_or_fail(message: Message, error: str) -> str:
    """ "retry" when the text is to be tried again, else "failed"."""
    if message.attempts >= settings.SEND_ATTEMPTS:
        _finish(message, Status.FAILED, f"{error} (gave up after {message.attempts} attempts)")
        return Status.FAILED
    backoff = min(RETRY_FIRST * 2 ** (message.attempts - 1), RETRY_MOST) * random.uniform(0.5, 1.5)
    claimed = Q(status__in=(Status.SENDING, Status.UNKNOWN), sid__isnull=True)
    Message.objects.filter(claimed, pk=message.pk).update(
        status=Status.PENDING, error=error[:200], send_at=timezone.now() + timedelta(seconds=backoff)
    )
    return RETRY


def _refused(message: Message, refusal: Refused) -> None:
    """Record a refusal and what it says about the number."""
    our, their = message.conversation.recipient, message.conversation.sender
    # One line, no traceback: a refusal is an answer, not a fault, and is never retried.
    logger.warning("send id=%s from=%s to=%s failed: %s", message.pk, mask(our), mask(their), refusal)
    _finish(message, Status.FAILED, str(refusal))
    if refusal.code == OPTED_OUT:
        opted_out_mark(their, "" if settings.TWILIO_MESSAGING_SERVICE_SID else our)
    elif refusal.code in UNDELIVERABLE:
        undeliverable_mark(their, twilio_error(refusal.code, refusal.words))


def _wake_for_later() -> None:
    """A tick for the earliest text that may go later (scheduled, or backing off)."""
    earliest = Message.objects.due_later(timezone.now()).aggregate(earliest=Min("send_at"))["earliest"]
    if earliest is not None:
        in_pair_transaction(partial(outbox_wake, earliest))
