"""Twilio's traffic for live-server tests: texts of several pairs sent at a steady rate,
whether or not earlier ones were answered, each with its own MessageSid, with the answers kept."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid
from collections.abc import Callable

import requests

from tests.twilio import RECIPIENT, sign

COUNT = re.compile(r"messaged \+15005550006 (\d+) times?\.")
# Twilio gives up on a webhook after 15 seconds.
TWILIO_TIMEOUT = 15


@dataclasses.dataclass
class Sent:
    sender: str
    sid: str
    status: int | None  # None: no answer in time, or the connection failed (in doubt).
    reply: str | None

    @property
    def message(self) -> str | None:
        """The text of the TwiML <Message>, as recorded in Message.reply."""
        match = re.search(r"<Message>(.*)</Message>", self.reply or "")
        return match.group(1) if match else None

    @property
    def count(self) -> int | None:
        match = COUNT.search(self.reply or "")
        return int(match.group(1)) if match else None


class Traffic:
    """Texts from `pairs` senders, one every `interval` seconds each, in threads of their own.

    With `open_loop`, each text goes in a thread (and on a connection) of its own, so a sender
    does not wait for an answer before its next text, as Twilio does not; `probe_health`
    polls /healthz meanwhile.
    """

    def __init__(
        self,
        base_url: str,
        pairs: int = 3,
        interval: float = 0.1,
        *,
        open_loop: bool = False,
        probe_health: bool = True,
    ) -> None:
        self.url = f"{base_url}/sms/"
        self.base_url = base_url
        self.senders = [f"+1415555{index:04d}" for index in range(pairs)]
        self.interval = interval
        self.open_loop = open_loop
        self.probe_health = probe_health
        self.sent: list[Sent] = []
        self.health: list[tuple[float, int | None]] = []
        self.unhealthy: list[str] = []  # What /healthz said when it was not 200.
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Traffic:
        for sender in self.senders:
            self._start(self._texts, sender)
        if self.probe_health:
            self._start(self._probe_health)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        while self.threads:
            with self.lock:
                thread = self.threads.pop()
            thread.join()

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        with self.lock:
            self.threads.append(thread)

    def _texts(self, sender: str) -> None:
        # One thread a pair that keeps its cookie, as Twilio keeps one jar per pair; the
        # next text goes when its time comes, as with Twilio, answered or not.
        session = requests.Session()
        while not self.stopping.is_set():
            started = time.monotonic()
            if self.open_loop:
                self._start(self.text, requests.Session(), sender, f"SM{uuid.uuid4().hex}")
            else:
                self.text(session, sender, f"SM{uuid.uuid4().hex}")
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def text(self, session: requests.Session, sender: str, sid: str) -> Sent:
        params = {
            "From": sender,
            "To": RECIPIENT,
            "Body": "hello",
            "MessageSid": sid,
            "AccountSid": "AC" + "0" * 32,
        }
        try:
            response = session.post(
                self.url,
                data=params,
                headers={"X-Twilio-Signature": sign(self.url, params)},
                timeout=TWILIO_TIMEOUT,
            )
            status, reply = response.status_code, response.text if response.status_code == 200 else None
        except requests.RequestException:
            status, reply = None, None
        sent = Sent(sender, sid, status, reply)
        with self.lock:
            self.sent.append(sent)
        return sent

    def _probe_health(self) -> None:
        while not self.stopping.is_set():
            try:
                response = requests.get(f"{self.base_url}/healthz", timeout=5)
                status, said = response.status_code, response.text
            except requests.RequestException as error:
                status, said = None, str(error)
            with self.lock:
                self.health.append((time.monotonic(), status))
                if status != 200:
                    self.unhealthy.append(said)
            self.stopping.wait(0.2)

    def statuses(self) -> set[int | None]:
        return {sent.status for sent in self.sent}

    def health_between(self, start: float, end: float) -> set[int | None]:
        return {status for at, status in self.health if start <= at <= end}


def assert_nothing_lost(
    test: object, traffic: Traffic, committed: dict[str, str], in_doubt_allowed: bool = False
) -> None:
    """Every 200 is committed with that reply; nothing else is; each pair counts 1, 2, 3…

    `committed` maps each recorded MessageSid to the reply recorded with it.
    """
    assert_equal = test.assertEqual  # type: ignore[attr-defined]
    for sent in traffic.sent:
        if sent.status == 200:
            assert_equal(committed.get(sent.sid), sent.message, f"200 but not committed: {sent}")
        elif sent.status is not None or not in_doubt_allowed:
            assert_equal(committed.get(sent.sid), None, f"committed without a 200: {sent}")
    for sender in traffic.senders:
        counts = sorted(sent.count for sent in traffic.sent if sent.sender == sender and sent.status == 200)
        recorded = sum(1 for sent in traffic.sent if sent.sender == sender and sent.sid in committed)
        assert_equal(counts, list(range(1, len(counts) + 1)), f"counts of {sender}")
        if not in_doubt_allowed:
            assert_equal(recorded, len(counts), f"texts of {sender} recorded")
