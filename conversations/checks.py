import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from conversations.quiet_hours import quiet_hours_of


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


# Django's own rule for a key worth having (security.W009), which only `check --deploy` applies.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
# Keys copied from examples and defaults: known to everyone, so they sign nothing.
PLACEHOLDER_KEY_MARKERS = ("change-me", "changeme", "insecure", "placeholder", "secret-key", "your-")


def secret_key_problem(key: str) -> str | None:
    """Why a SECRET_KEY is unsafe for production, or None when it will do."""
    if not key:
        return "SECRET_KEY is empty"
    lowered = key.lower()
    if any(marker in lowered for marker in PLACEHOLDER_KEY_MARKERS):
        return "SECRET_KEY is a placeholder"
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return (
            f"SECRET_KEY is too short or too simple (it needs at least {SECRET_KEY_MIN_LENGTH} "
            f"characters, {SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different)"
        )
    return None


@register()
def check_secret_key(**kwargs: Any) -> list[Error]:
    # Sessions, staff logins and CSRF tokens are signed with it: a guessable key lets anyone
    # forge them. Refuse to start rather than serve with it.
    if settings.DEBUG:
        return []
    try:
        key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django's own refusal of an empty key.
        key = ""
    problem = secret_key_problem(key)
    if problem is None:
        return []
    return [
        Error(
            f"{problem}, but DEBUG is off.",
            hint="Set SECRET_KEY to a long random string, e.g. the output of "
            '`python -c "import secrets; print(secrets.token_urlsafe(50))"`.',
            id="conversations.E002",
        )
    ]


SMS_BACKENDS = ("twilio", "console")


@register()
def check_sms_backend(**kwargs: Any) -> list[Error]:
    # Checked here, once, rather than by the first text the app sends.
    backend = settings.SMS_BACKEND
    if backend in SMS_BACKENDS:
        return []
    return [
        Error(
            f"SMS_BACKEND must be twilio or console, not {backend!r}.",
            hint="twilio sends through Twilio's REST API; console logs each text instead.",
            id="conversations.E003",
        )
    ]


@register()
def check_quiet_hours(**kwargs: Any) -> list[Error]:
    try:
        quiet_hours_of(settings.QUIET_HOURS)
    except ImproperlyConfigured as problem:
        return [
            Error(
                str(problem),
                hint="Leave QUIET_HOURS empty for none.",
                id="conversations.E004",
            )
        ]
    return []


@register()
def check_outbox_settings(**kwargs: Any) -> list[Error]:
    # Each would stop the worker at its first text, long after startup: refuse to start instead.
    problems = []
    if settings.TASKS_BACKEND not in ("db", "rq"):
        problems.append(f"TASKS_BACKEND must be db or rq, not {settings.TASKS_BACKEND!r}.")
    if settings.TASKS_BACKEND == "rq" and not settings.REDIS_URL:
        problems.append("TASKS_BACKEND=rq needs REDIS_URL (the Redis the workers share).")
    if settings.SMS_SEND_RATE <= 0 or settings.TWILIO_TIMEOUT <= 0 or settings.OUTBOX_POLL <= 0:
        problems.append("SMS_SEND_RATE, TWILIO_TIMEOUT and OUTBOX_POLL must be more than 0.")
    if settings.SEND_ATTEMPTS < 1:
        problems.append("SEND_ATTEMPTS must be at least 1.")
    if not 0 <= settings.OUTBOX_WORKER_NICE <= 19:
        problems.append("OUTBOX_WORKER_NICE must be between 0 and 19.")
    return [Error(problem, id="conversations.E005") for problem in problems]


# As long as secrets.token_urlsafe(24) makes: a scraper's token is typed into no form.
METRICS_TOKEN_MIN_LENGTH = 32


@register()
def check_metrics(**kwargs: Any) -> list[Error]:
    # /metrics must not answer anyone without the token, nor show one worker's counts as the
    # whole server's: refuse to start instead.
    if not settings.METRICS_ENABLED:
        return []
    problems = []
    if len(settings.METRICS_TOKEN) < METRICS_TOKEN_MIN_LENGTH:
        problems.append(
            f"METRICS_ENABLED needs a METRICS_TOKEN of at least {METRICS_TOKEN_MIN_LENGTH} characters, "
            'e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`.'
        )
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if not directory:
        problems.append(
            "METRICS_ENABLED needs PROMETHEUS_MULTIPROC_DIR (default var/metrics): without it, each "
            "process would show only its own counts."
        )
    elif not _writable_directory(Path(directory)):
        problems.append(
            f"PROMETHEUS_MULTIPROC_DIR ({directory}) is not a directory this process can write to."
        )
    return [Error(problem, id="conversations.E021") for problem in problems]


def _writable_directory(path: Path) -> bool:
    """Whether the directory is writable, or could be made (metrics.py makes it when missing)."""
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)
