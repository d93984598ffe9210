# The two commands: `make run` serves the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Django's own session store tests, from the source release of the Django we pin: our
# store must keep the contract they check (tests/test_session_store_contract.py).
DJANGO_VERSION := $(shell sed -n 's/^Django==//p' requirements.txt)
DJANGO_TESTS := $(VENV)/django-tests-$(DJANGO_VERSION)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run worker test test-fast lint format serve bench migrate clean

# The server and the outbox's worker (which sends the texts the app starts), in one command:
# Ctrl-C stops both.
run: $(VENV)/.runtime .env
	$(BIN)/python manage.py migrate --no-input
	@# With METRICS_ENABLED, /metrics counts from this run on (the default PROMETHEUS_MULTIPROC_DIR).
	rm -rf var/metrics
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/python manage.py outbox_worker --reload & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The outbox's worker alone (TASKS_BACKEND: db_worker, or an RQ worker).
worker: $(VENV)/.runtime .env
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py outbox_worker

# The suite never reads .env (tests/settings.py), so it needs none.
test: $(VENV)/.dev $(DJANGO_TESTS)
	$(BIN)/python -m pytest

# The quick loop while editing: everything but live servers, faults, browsers and subprocesses.
test-fast: $(VENV)/.dev $(DJANGO_TESTS)
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Production profile: gunicorn with the repo's config, static files collected for whitenoise.
serve: $(VENV)/.runtime .env
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/gunicorn -c gunicorn.conf.py

# The webhook under load beside a no-op view and Twilio's Flask tutorial app (docs/benchmarks.md).
# wrk is a Debian package: installed here when missing and we may (root), else the bench says so.
bench: $(VENV)/.dev .env
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null
	$(BIN)/python -m bench $(BENCH_ARGS)

$(DJANGO_TESTS): | $(BIN)/python
	rm -rf $@.tmp && mkdir -p $@.tmp
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: -d $@.tmp Django==$(DJANGO_VERSION)
	tar -xzf $@.tmp/django-$(DJANGO_VERSION).tar.gz -C $@.tmp --strip-components=2 \
		django-$(DJANGO_VERSION)/tests/sessions_tests django-$(DJANGO_VERSION)/tests/cache
	rm $@.tmp/*.tar.gz && mv $@.tmp $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# A local .env for development: a random SECRET_KEY and DEBUG on. Never overwritten.
.env:
	$(PYTHON) -c "import secrets; print(f'SECRET_KEY={secrets.token_urlsafe(50)}\nDEBUG=True')" > $@
	@echo "Wrote $@ (DEBUG=True, random SECRET_KEY). See .env.example for every setting."

clean:
	rm -rf $(VENV) var staticfiles
