"""The simulator's mark: how a text sent by the simulator or `manage.py sms` says so.

Twilio never sends the SimulatorMark parameter. Its value is an HMAC of the text's
MessageSid, From and To keyed with TWILIO_AUTH_TOKEN: being inside the signed form is not
enough, since whoever has one signed request can move the boundaries between Twilio's
parameters (see texts.not_from_twilio) and make a "SimulatorMark" out of a Body, but no one
without the token can make its value.
"""

from django.conf import settings
from django.http import QueryDict
from django.utils.crypto import constant_time_compare, salted_hmac

SIMULATOR_MARK = "SimulatorMark"


def simulator_mark(sid: str, sender: str, recipient: str) -> str:
    return salted_hmac(
        SIMULATOR_MARK, f"{sid}\n{sender}\n{recipient}", secret=settings.TWILIO_AUTH_TOKEN, algorithm="sha256"
    ).hexdigest()


def simulator_mark_matches(params: QueryDict) -> bool:
    sid = params.get("MessageSid", "")
    expected = simulator_mark(sid, params.get("From", "").strip(), params.get("To", "").strip())
    return bool(sid) and constant_time_compare(params.get(SIMULATOR_MARK, ""), expected)
