"""What needs Django itself: SQL statements per text, and the counts the database ended with.

Run in the bench process, against the bench database, with the server's settings.
"""

from __future__ import annotations

import os
import warnings

import django

from bench.traffic import BODIES, PROXY_HEADERS, Pair, Signer, form_body, new_sid, twilio_params

FORM = "application/x-www-form-urlencoded"


def setup(env: dict[str, str]) -> None:
    """Configure Django as the server is configured (same database, secret key and token); migrate."""
    os.environ.update(env)
    os.environ["ALLOWED_HOSTS"] = f"{env['ALLOWED_HOSTS']},testserver"  # Django's test client
    # Static files are not collected for the benchmark, and not needed: no page is rendered.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", interactive=False, verbosity=0)
    connections.close_all()


def statements_per_text(pair: Pair, cookie: str, token: str) -> tuple[list[str], list[int]]:
    """The SQL of a steady-state text (known pair, its cookie sent), and the statuses of the texts sent.

    A first text, not captured, takes the one-off work of a fresh process (connecting, loading
    templates) out of the steady state.
    """
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    signer = Signer(token, "https://testserver/sms/")

    def text() -> int:
        params = twilio_params(pair, BODIES[0], new_sid())
        headers = {**PROXY_HEADERS, "X-Twilio-Signature": signer.sign(params), "Cookie": cookie}
        # secure: HTTPS as gunicorn reports it behind the trusted proxy (the WSGI scheme).
        response = Client().post("/sms/", form_body(params), FORM, secure=True, headers=headers)
        morsel = response.cookies.get("sessionid")
        if response.status_code == 200 and (morsel is None or f"sessionid={morsel.value}" != cookie):
            raise RuntimeError(f"the reply to {pair.sender} changed its session cookie")
        return response.status_code

    statuses = [text()]
    with CaptureQueriesContext(connection) as captured:
        statuses.append(text())
    connections.close_all()
    return [query["sql"] for query in captured.captured_queries], statuses


def window_counts(pairs: list[Pair]) -> dict[int, int]:
    """Each pair's window_count (pairs with no conversation are left out)."""
    from django.db import connections

    from conversations.models import Conversation

    index_of = {(pair.sender, pair.recipient): pair.index for pair in pairs}
    conversations = Conversation.objects.filter(sender__in=[pair.sender for pair in pairs])
    rows = conversations.values_list("sender", "recipient", "window_count")
    counts = {index_of[s, r]: n for s, r, n in rows if (s, r) in index_of}
    connections.close_all()
    return counts
