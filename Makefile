# Two commands for a newcomer: `make dev` (the whole embedded stack) and `make test` (lint + every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: dev test install lint format migrate i18n chromium postgres promtool nginx vendor-htmx bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

dev: install
	$(BIN)/python -m webapp dev

test: install chromium postgres promtool nginx lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: install
	$(BIN)/python -m webapp migrate

# Extract messages from code and templates and update the en/vi/zh catalogues (then translate vi and zh).
i18n: install
	$(BIN)/python -m webapp i18n

# Debian's Chromium for the browser tests (Playwright's own browser download is never used), with a CJK font so
# the Chinese pages' screenshots show text.
chromium:
	@command -v chromium >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium fonts-wqy-microhei; }

# promtool checks and unit-tests the operators' alerting rules (docs/ops/alerts.yml): Debian's prometheus package.
promtool:
	@command -v promtool >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

# docs/deploy.md's nginx example runs as it stands in front of two instances (tests/integration/test_proxy.py).
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends nginx-light; }

# The PostgreSQL tests need the local server on 127.0.0.1:5432.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
		$(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1

# Refresh the vendored htmx files from the npm registry; versions and integrity are in static/vendor/VERSIONS.md.
vendor-htmx:
	cd $$(mktemp -d) && npm pack --silent htmx.org@2.0.11 htmx-ext-sse@2.2.4 && \
		tar xzf htmx.org-2.0.11.tgz package/dist/htmx.min.js && cp package/dist/htmx.min.js $(CURDIR)/static/vendor/htmx-2.0.11.min.js && \
		tar xzf htmx-ext-sse-2.2.4.tgz package/dist/sse.js && cp package/dist/sse.js $(CURDIR)/static/vendor/htmx-ext-sse-2.2.4.js
	sha256sum static/vendor/*.js

# Benchmarks print figures (tests/perf/): IPN ingest (wrk), IPNs offered open-loop, judged IPN batches, order creation,
# live fan-out, support search, activity, signing; on the local PostgreSQL.
bench: install postgres
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	@$(BIN)/pip install -q py-spy==0.4.3  # BENCH_PROFILE=FILE profiles the app (tests/perf/bench_order_creation.py)
	@for bench in tests/perf/bench_*.py; do [ -e "$$bench" ] && $(BIN)/python "$$bench"; done; true

clean:
	rm -rf $(VENV) var tests/artifacts .pytest_cache .ruff_cache
