"""What needs Django itself: SQL statements per text, and the counts the database ended with.

Run in the bench process against the bench database, after the server has stopped.
"""

from __future__ import annotations

import os
import warnings

import django

from bench.traffic import BODIES, PROXY_HEADERS, Pair, Signer, form_body, new_sid, twilio_params

TEST_URL = "https://testserver/sms/"


def setup(env: dict[str, str]) -> None:
    """Configure Django as the server is configured (same database, secret key and token)."""
    os.environ.update(env)
    # Django's test client calls itself "testserver".
    os.environ["ALLOWED_HOSTS"] = f"{env['ALLOWED_HOSTS']},testserver"
    os.environ["DJANGO_SETTINGS_MODULE"] = "smsproject.settings"
    # Static files are not collected for the benchmark, and not needed: no page is rendered.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()


def close_connections() -> None:
    from django.db import connections

    connections.close_all()


def statements_per_text(pair: Pair, cookie: str, token: str) -> tuple[list[str], list[int]]:
    """The SQL of one steady-state text (known pair, its cookie sent), and the statuses of the texts sent.

    One text goes first, unmeasured, so that one-off work of a fresh process (connecting,
    loading templates) is not counted against the steady state.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    signer = Signer(token, TEST_URL)
    statuses = [_post(signer, pair, cookie)]
    with CaptureQueriesContext(connection) as captured:
        statuses.append(_post(signer, pair, cookie))
    close_connections()
    return [query["sql"] for query in captured.captured_queries], statuses


def _post(signer: Signer, pair: Pair, cookie: str) -> int:
    from django.test import Client

    params = twilio_params(pair, BODIES[0], new_sid())
    response = Client().post(
        "/sms/",
        form_body(params),
        content_type="application/x-www-form-urlencoded",
        # HTTPS as gunicorn reports it behind the trusted proxy: the scheme comes from the WSGI
        # environment, so X-Forwarded-Proto alone no longer makes a request secure in-process.
        secure=True,
        headers={**PROXY_HEADERS, "X-Twilio-Signature": signer.sign(params), "Cookie": f"sessionid={cookie}"},
    )
    morsel = response.cookies.get("sessionid")
    if response.status_code == 200 and (morsel is None or morsel.value != cookie):
        raise RuntimeError(f"the reply to {pair.sender} changed its session cookie")
    return response.status_code


def window_counts(pairs: list[Pair]) -> dict[int, int]:
    """Each pair's window_count (pairs with no conversation are left out)."""
    from conversations.models import Conversation

    index_of = {(pair.sender, pair.recipient): pair.index for pair in pairs}
    rows = Conversation.objects.filter(sender__in=[pair.sender for pair in pairs]).values_list(
        "sender", "recipient", "window_count"
    )
    counts = {
        index_of[sender, recipient]: count
        for sender, recipient, count in rows
        if (sender, recipient) in index_of
    }
    close_connections()
    return counts
