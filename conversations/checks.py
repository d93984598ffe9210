from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_twilio_auth_token(**kwargs: Any) -> list[Error]:
    # Without a token every webhook would be rejected (or, worse, accepted unsigned),
    # so refuse to start rather than fail one text at a time.
    if settings.TWILIO_REQUIRE_SIGNATURE and not settings.TWILIO_AUTH_TOKEN:
        return [
            Error(
                "TWILIO_AUTH_TOKEN is not set, but DEBUG is off, so the SMS webhook "
                "must check Twilio's signatures.",
                hint="Set TWILIO_AUTH_TOKEN to your Twilio account's Auth Token "
                "(or DEBUG=True for unsigned local testing).",
                id="conversations.E001",
            )
        ]
    return []
