"""Pacing (conversations/pacing.py): slots 1/SMS_SEND_RATE apart per sender, reserved at most
PACE_AHEAD ahead, never saved up while a sender is idle."""

from unittest import mock

from django.test import TestCase, override_settings

from conversations.models import SenderPace
from conversations.pacing import PACE_AHEAD, Slot, pace_reserve

NOW = 1_000_000.0
SENDER = "+15005550006"


@override_settings(SMS_SEND_RATE=50)
class PacingTestCase(TestCase):
    def reserve(self, segments: int = 1, at: float = NOW, sender: str = SENDER) -> Slot | float:
        with mock.patch("conversations.pacing.time.time", return_value=at):
            return pace_reserve(sender, segments)

    def test_slots_follow_each_other_one_segment_time_apart_however_fast_they_are_claimed(self) -> None:
        slots = [self.reserve() for _ in range(5)]

        self.assertEqual(
            [round(slot.at - NOW, 6) for slot in slots if isinstance(slot, Slot)], [0, 0.02, 0.04, 0.06, 0.08]
        )

    def test_a_text_of_three_segments_takes_three_slots(self) -> None:
        self.reserve(segments=3)

        self.assertEqual(self.reserve(), Slot(NOW + 3 / 50))

    def test_no_slot_is_reserved_further_ahead_than_pace_ahead(self) -> None:
        reserved = [self.reserve() for _ in range(round(PACE_AHEAD * 50))]  # Up to NOW + PACE_AHEAD.
        wait = self.reserve(at=NOW - 0.5)  # The next free slot is PACE_AHEAD + 0.5 s away.

        self.assertTrue(all(isinstance(slot, Slot) for slot in reserved))
        assert isinstance(wait, float)
        self.assertAlmostEqual(wait, 0.5)  # Until the next free slot is within reach.
        self.assertAlmostEqual(SenderPace.objects.get().next_at, NOW + PACE_AHEAD)  # Nothing reserved.

    def test_an_idle_sender_starts_again_from_now_without_a_burst(self) -> None:
        self.reserve()
        later = NOW + 60

        first, second = self.reserve(at=later), self.reserve(at=later)

        self.assertEqual((first, second), (Slot(later, late=True), Slot(later + 1 / 50)))

    def test_a_slot_that_was_free_before_it_was_asked_for_is_late(self) -> None:
        self.reserve()

        self.assertIs(self.reserve(at=NOW + 0.01).late, False)  # Reserved ahead: keeping up.
        self.assertIs(self.reserve(at=NOW + 0.5).late, True)  # Free since NOW + 0.04: behind.

    def test_each_sender_keeps_its_own_pace(self) -> None:
        self.reserve()

        self.assertEqual(self.reserve(sender="MG" + "0" * 32).at, NOW)
