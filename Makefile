# Eventing — `make run` serves Mission Control on the embedded stack (runtime requirements only);
# `make check` lints and runs the unit tests in under a minute; `make test` runs the suite (dev
# requirements).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff
PORT ?= 8000
# The tiers, by directory: no database or services / the database, one process / worker
# processes, receivers, browsers and fresh clones.
UNIT := tests/unit
INTEGRATION := tests/integration
E2E := tests/e2e

.PHONY: run check test install install-runtime lint bench docs screenshots
NODE_CLIENT := tests/space_cloud/node_modules/.package-lock.json

# The runtime set (requirements.txt) is all `make run` needs. Nothing is written when the venv
# is current: a venv holding the dev set (a superset) needs no runtime install.
install-runtime:
	@if [ -f $(VENV)/.installed ] && [ ! requirements.txt -nt $(VENV)/.installed ]; then :; \
	elif [ -f $(VENV)/.runtime ] && [ ! requirements.txt -nt $(VENV)/.runtime ]; then :; \
	else \
	  $(PYTHON) -m venv $(VENV) && \
	  $(PY) -m pip install -q --upgrade pip && \
	  $(PY) -m pip install -q -r requirements.txt && \
	  touch $(VENV)/.runtime; \
	fi

# The dev set (requirements-dev.txt: the runtime set, tests and tooling) for `make test` and CI.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Space Cloud's JS client (npm space-api, pinned by package-lock.json) for its queue-endpoint
# test. Without npm the test skips locally (and fails in CI), so a missing npm is only a note.
$(NODE_CLIENT): tests/space_cloud/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/space_cloud && npm ci --no-audit --no-fund --loglevel=error; \
	else \
	  echo "npm not found: Space Cloud's JS client test will skip (install Node.js and npm)" >&2; \
	fi

install: $(VENV)/.installed $(NODE_CLIENT)

run: install-runtime
	$(PY) scripts/run.py --port $(PORT)

# Lint and the unit tier: no database, no services, under a minute.
check: install
	$(RUFF) check .
	$(RUFF) format --check .
	$(PY) -m tests.stack sqlite -- $(PY) -m pytest $(UNIT) -q $(PYTEST_ARGS)

# Every stage always runs (a red stage must not hide the next); the summary names the stages
# that failed and the exit status is non-zero if any did. The integration and e2e tiers run in
# full on PostgreSQL + Redis; the e2e tests whose outcome depends on the broker or the database
# engine (marker `stacks`) run again on the two other stacks.
test: install
	@failed=""; \
	echo "== make test: stage lint (ruff check, ruff format --check)"; \
	{ $(RUFF) check . && $(RUFF) format --check .; } || failed="$$failed lint"; \
	echo "== make test: stage unit ($(UNIT): no database, no services)"; \
	$(PY) -m tests.stack sqlite -- $(PY) -m pytest $(UNIT) $(PYTEST_ARGS) || failed="$$failed unit"; \
	echo "== make test: stage postgres (PostgreSQL + Redis: $(INTEGRATION) and $(E2E) but the newcomer run)"; \
	$(PY) -m tests.stack postgres -- $(PY) -m pytest $(INTEGRATION) $(E2E) -m "not newcomer" $(PYTEST_ARGS) || failed="$$failed postgres"; \
	echo "== make test: stage sqlite (SQLite + embedded broker: $(E2E) marked stacks, and the newcomer run)"; \
	$(PY) -m tests.stack sqlite -- $(PY) -m pytest $(E2E) -m "stacks or newcomer" $(PYTEST_ARGS) || failed="$$failed sqlite"; \
	echo "== make test: stage rabbitmq (PostgreSQL + RabbitMQ: $(E2E) marked stacks)"; \
	$(PY) -m tests.stack rabbitmq -- $(PY) -m pytest $(E2E) -m "stacks" $(PYTEST_ARGS) || failed="$$failed rabbitmq"; \
	if [ -n "$$failed" ]; then echo "== make test: FAILED stage(s):$$failed" >&2; exit 1; fi; \
	echo "== make test: all five stages passed"

lint: install
	$(RUFF) check .
	$(RUFF) format --check .

bench: install
	$(PY) -m tests.stack postgres -- $(PY) -m bench.run $(BENCH)

# Regenerate the EVENTING settings table of docs/configuration.md from eventing/conf.py.
docs: install
	$(PY) scripts/config_docs.py

# Refresh docs/screenshots/ (linked from README): the browser tests take them, scripts/screenshots.py
# keeps README's pages and makes them small.
screenshots: install
	$(PY) -m tests.stack sqlite -- $(PY) -m pytest tests/e2e/mission_control/test_browser.py tests/e2e/eventing/portal/test_portal_browser.py -m browser $(PYTEST_ARGS)
	$(PY) scripts/screenshots.py
