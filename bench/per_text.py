"""The app's own CPU per steady-state text, in-process: `python -m bench.per_text`.

No HTTP server and no load generator: signed texts of warmed pairs (cookie sent) go straight
through Django's WSGI handler, with the bench's production settings, on a fresh SQLite file.
CPU time (time.process_time) is far less sensitive to a shared machine than wrk's requests/s,
and the best of several rounds less still. `--profile` prints cProfile's top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.traffic import BODIES, Signer, form_body, make_pairs, new_sid, twilio_params

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = BASE_DIR / "var" / "bench-per-text.sqlite3"
TOKEN = "per-text-" + "0123456789abcdef" * 2
HOST = "127.0.0.1:8000"
URL = f"https://{HOST}/sms/"

Environ = dict[str, object]


def configure() -> None:
    """The bench's server settings (bench/cli.py's server_env), on a fresh SQLite file."""
    DATABASE.parent.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DATABASE}{suffix}").unlink(missing_ok=True)
    os.environ.update(
        ENV_FILE="",
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"sqlite:///{DATABASE}",
        DEBUG="False",
        SECRET_KEY=secrets.token_urlsafe(50),
        TWILIO_AUTH_TOKEN=TOKEN,
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        USE_X_FORWARDED="True",
        TWILIO_WEBHOOK_BASE_URL="",
        CONVERSATION_TIMEOUT="14400",
        UNKNOWN_CALLER_NAME="Friend",
    )
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def environ_of(body: str, signature: str, cookie: str) -> Environ:
    """What gunicorn hands the app for a text from the trusted TLS proxy (scheme https)."""
    data = body.encode()
    environ: Environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/sms/",
        "QUERY_STRING": "",
        "RAW_URI": "/sms/",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": HOST,
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_TWILIO_SIGNATURE": signature,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "smsproject.arrived_at": time.monotonic(),
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def run(app: Callable, environs: Iterable[Environ]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each environ through the app: the status and headers of each answer."""
    answers = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        answers.append((status, headers))

    for environ in environs:
        environ["smsproject.arrived_at"] = time.monotonic()
        response = app(environ, start_response)
        b"".join(response)
        response.close()
    return answers


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.per_text", description=__doc__)
    parser.add_argument("--texts", type=int, default=2000, help="texts per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is reported")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    args = parser.parse_args()
    configure()
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    signer = Signer(TOKEN, URL)
    pairs = make_pairs(args.pairs)
    cookies: dict[int, str] = {}
    firsts = []
    for pair in pairs:  # Each pair's first text: its conversation, its window, its cookie.
        params = twilio_params(pair, BODIES[0], new_sid())
        firsts.append(environ_of(form_body(params), signer.sign(params), ""))
    for pair, (_, headers) in zip(pairs, run(app, firsts), strict=True):
        cookies[pair.index] = next(v.split(";")[0] for k, v in headers if k == "Set-Cookie")

    def texts(count: int) -> list[Environ]:
        out = []
        for n in range(count):
            pair = pairs[n % len(pairs)]
            params = twilio_params(pair, BODIES[n % len(BODIES)], new_sid())
            out.append(environ_of(form_body(params), signer.sign(params), cookies[pair.index]))
        return out

    best = float("inf")
    for round_ in range(args.rounds):
        environs = texts(args.texts)
        started = time.process_time()
        statuses = {status for status, _ in run(app, environs)}
        per_text = (time.process_time() - started) / args.texts * 1e6
        if statuses != {"200 OK"}:
            print(f"not all 200: {sorted(statuses)}")
            return 1
        best = min(best, per_text)
        print(f"round {round_ + 1}: {per_text:,.0f} µs CPU per text")
    print(f"best of {args.rounds}: {best:,.0f} µs CPU per text ({args.texts} texts, {args.pairs} pairs)")
    if args.profile:
        environs = texts(args.texts)
        profiler = cProfile.Profile()
        profiler.runcall(run, app, environs)
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
