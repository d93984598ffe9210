"""Settings for SMS Conversations, read from the environment.

The entry points (manage.py, wsgi.py, asgi.py, gunicorn.conf.py) load the local .env into
the environment first (smsproject/env_file.py); the test suite does not.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Core
SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
if not SECRET_KEY and DEBUG:
    # For `make run` without a .env; with DEBUG off, conversations.E002 refuses any such key.
    SECRET_KEY = "insecure-development-key"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "phonenumber_field",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "conversations",
]

MIDDLEWARE = [
    "conversations.logs.text_context_middleware",
    "conversations.proxies.untrusted_forwarded_host_middleware",
    # Twilio's webhooks are served from here: the rest are for browsers (conversations/webhook.py).
    "conversations.webhook.twilio_webhook_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "smsproject.urls"
WSGI_APPLICATION = "smsproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database
# One deadline per text, below Twilio's 15 s and gunicorn's timeout: every wait for a lock
# ends by it, and a text not committed by then is rolled back and answered 503.
WEBHOOK_DEADLINE = min(env.float("WEBHOOK_DEADLINE", default=10.0), 14.0)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Keep connections between requests: opening one costs more than a whole text, and on
# SQLite the last connection to close checkpoints the WAL, with an fsync, every time.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # BEGIN IMMEDIATE takes the write lock up front, so a transaction that reads a
        # conversation and then writes it can never be overtaken between the two.
        "transaction_mode": "IMMEDIATE",
        # WAL lets the admin read while the webhook writes; NORMAL syncs at checkpoints,
        # which in WAL mode still never corrupts the database. Writers check the WAL into
        # the database once they have released the writer lock (locks.CHECKPOINT_EVERY);
        # SQLite's own checkpoint, inside a COMMIT, only when they have not for 10,000 pages.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000;",
        "timeout": WEBHOOK_DEADLINE,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No lock wait outlives a text's deadline; statements of a late text get less (locks.py).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={int(WEBHOOK_DEADLINE * 1000)}"
    )
# Tests get a database of their own per run, so that two suites can run side by side. On
# SQLite it is a real file (not the in-memory default): the gunicorn processes started by
# the concurrency tests share it, in WAL mode like production.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    _test_name = str(Path(tempfile.gettempdir()) / f"smsconversations-test-{os.getpid()}.sqlite3")
else:
    _test_name = f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
DATABASES["default"]["TEST"] = {"NAME": _test_name}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache and sessions. Django's sessions table holds both staff logins and conversations;
# with Redis, reads of a session are served from the cache (cached_db), writes go to both.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    # A cache that does not answer must cost a request no more than this: the database
    # holds the truth, and the sessions engine below falls back to it.
    _redis_timeout = env.float("REDIS_TIMEOUT", default=0.25)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": _redis_timeout, "socket_timeout": _redis_timeout},
        }
    }
    # cached_db, except that a cache error never fails a request (conversations/sessions.py).
    SESSION_ENGINE = "conversations.sessions"
else:
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Logins: django-axes locks a username out from an address after AXES_FAILURE_LIMIT wrong
# passwords, for AXES_COOLOFF_TIME (`manage.py axes_reset_username NAME` lifts it sooner).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Per username and address together: a guesser cannot lock a user out from everywhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# Internationalization
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files, served by whitenoise from STATIC_ROOT (`collectstatic`, done by `make serve`).
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed, not hashed: hashed names need collectstatic before any page renders,
    # tests and `make run` included, and the admin's few files gain little from them.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# HTTPS. On by default in production; /healthz stays reachable over plain HTTP for load
# balancers that probe the app directly.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading commits the whole domain to HTTPS in browsers for good: the owner's decision.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

# Proxies. The scheme comes from the WSGI environment: gunicorn sets it from
# X-Forwarded-Proto only for peers in FORWARDED_ALLOW_IPS (not SECURE_PROXY_SSL_HEADER,
# which would believe any client that reaches gunicorn directly). X-Forwarded-Host, with
# USE_X_FORWARDED, is likewise dropped from other peers (conversations/proxies.py).
FORWARDED_ALLOW_IPS = env.list("FORWARDED_ALLOW_IPS", default=["127.0.0.1", "::1"])
USE_X_FORWARDED = env.bool("USE_X_FORWARDED", default=False)
USE_X_FORWARDED_HOST = USE_X_FORWARDED

# SMS and WhatsApp (Twilio)
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
# The number app-initiated texts come from, unless one is given.
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
# A Messaging Service (MG…) sends app-initiated texts instead of a bare From number, as US
# carriers require for registered A2P 10DLC traffic; it picks the sender from its pool.
TWILIO_MESSAGING_SERVICE_SID = env("TWILIO_MESSAGING_SERVICE_SID", default="")
# The public URL Twilio calls, when it differs from what the request says (tunnels, proxies).
TWILIO_WEBHOOK_BASE_URL = env("TWILIO_WEBHOOK_BASE_URL", default="")
# Decided from the configured DEBUG, not the one the test runner switches off at run time.
TWILIO_REQUIRE_SIGNATURE = bool(TWILIO_AUTH_TOKEN) or not DEBUG
# How app-initiated texts leave, the way EMAIL_BACKEND works for mail: "twilio" (the REST
# API) or "console" (logged and recorded as sent, no network; for development and demos).
# Any other value is refused by `manage.py check` (conversations.E003).
SMS_BACKEND = env("SMS_BACKEND", default="console" if DEBUG and not TWILIO_ACCOUNT_SID else "twilio")

# The outbox: texts the app starts are committed as rows first and sent by a worker
# (`manage.py db_worker`; README "The outbox"), never by a web request.
# Seconds any call to Twilio's REST API may take before it is given up.
TWILIO_TIMEOUT = env.float("TWILIO_TIMEOUT", default=10.0)
# Message segments per second one sender (our number, or the Messaging Service) may send, across
# every worker: 1 for a US long code; more for toll-free numbers and short codes.
SMS_SEND_RATE = env.float("SMS_SEND_RATE", default=1.0)
# Tries of a text Twilio says it did not process (429, no connection), then it fails.
SEND_ATTEMPTS = env.int("SEND_ATTEMPTS", default=5)
# While texts wait, the worker looks again at least this often (seconds): for rows a killed
# worker left behind, and a lost task.
OUTBOX_POLL = env.float("OUTBOX_POLL", default=10.0)
# The worker lowers its own CPU priority by this much (nice, 0-19) when it starts: on a host it
# shares with the web server, a text coming in (Twilio waits 15 s for it) goes before one going
# out (which waits for its pace anyway). 0 leaves it as started.
OUTBOX_WORKER_NICE = env.int("OUTBOX_WORKER_NICE", default=10)
# Where the worker's tasks queue: "db" (django-tasks-db, in DATABASE_URL; `manage.py db_worker`)
# or "rq" (Redis at REDIS_URL, for workers on several hosts; `manage.py rqworker`).
TASKS_BACKEND = env("TASKS_BACKEND", default="db")
if TASKS_BACKEND == "rq":
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0"}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Simulator: /simulator/ for staff with its permission; off in production unless switched on.
SIMULATOR_ENABLED = env.bool("SIMULATOR_ENABLED", default=DEBUG)

# Trying it without Twilio: where `manage.py sms` keeps each pair's cookie between runs.
SMS_COOKIE_JAR = env.path("SMS_COOKIE_JAR", default=BASE_DIR / "var" / "sms-cookies.json")

# Conversations
UNKNOWN_CALLER_NAME = env("UNKNOWN_CALLER_NAME", default="Friend")
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default="US")
PHONENUMBER_DEFAULT_REGION = PHONE_DEFAULT_REGION
# Twilio keeps a pair's cookie for at most 4 hours, so a longer window could not be continued.
CONVERSATION_TIMEOUT = min(env.int("CONVERSATION_TIMEOUT", default=14400), 14400)
# Texts the app starts wait while it is night where the recipient is (`21:00-08:00`, in their
# number's time zone, else TIME_ZONE); empty: never. Replies to inbound texts never wait.
# Read by conversations/quiet_hours.py; `manage.py check` refuses a malformed value (E004).
QUIET_HOURS = env("QUIET_HOURS", default="")
# The largest CSV of callers the admin imports (bytes); a bigger file is refused unread.
CALLER_IMPORT_MAX_BYTES = env.int("CALLER_IMPORT_MAX_BYTES", default=2 * 1024 * 1024)
# Seconds the bot stays quiet in a conversation after staff text in it (0: it never pauses).
HANDOFF_PAUSE = env.int("HANDOFF_PAUSE", default=1800)

# Metrics for Prometheus at /metrics (conversations/metrics.py): off unless switched on, and
# then only for a scraper that sends `Authorization: Bearer METRICS_TOKEN` (conversations.E021
# refuses an empty or short token).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=False)
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Where every process (gunicorn's workers, the outbox's worker, runserver) keeps its counts,
# one file each, for /metrics to add up; gunicorn's master clears the files of processes gone
# when it starts. prometheus_client reads the variable, not this setting, when it is first
# imported (and takes even an empty one for a directory): so it is set here, before anything
# imports it, and removed when empty. A relative path is from BASE_DIR, whatever the cwd.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="var/metrics" if METRICS_ENABLED else "")
if PROMETHEUS_MULTIPROC_DIR:
    PROMETHEUS_MULTIPROC_DIR = str(BASE_DIR / PROMETHEUS_MULTIPROC_DIR)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
else:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# Logging: everything to stderr (one line per webhook at INFO, tracebacks of unhandled
# errors), plain or JSON (LOG_FORMAT=json); see conversations/logs.py, whose configure()
# refuses any other LOG_FORMAT or LOG_LEVEL with a clear message before dictConfig runs.
LOG_LEVEL = env("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING_CONFIG = "conversations.logs.configure"
_LOG_LINE = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"text_context": {"()": "conversations.logs.TextContextFilter"}},
    "formatters": {
        "plain": {"()": "conversations.logs.PlainFormatter", "format": _LOG_LINE},
        # One JSON object a line, for log shippers; the traceback is its exc_info field.
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", "format": _LOG_LINE},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": LOG_FORMAT,
            "filters": ["text_context"],
        }
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        # Unhandled errors ("Internal Server Error", with the traceback) reach the root
        # handler; Django's own console handler would print them twice under runserver.
        "django": {"level": LOG_LEVEL},
        # Its INFO records hold whole API requests, numbers and message bodies included.
        "twilio": {"level": "WARNING"},
    },
}

# Error reports to Sentry, when SENTRY_DSN is set (started by the app once Django is set
# up: conversations/apps.py): no phone numbers, no message bodies.
SENTRY_DSN = env("SENTRY_DSN", default="")
