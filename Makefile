# whalecopy: every target sets itself up (venv + pinned install) on a fresh clone.
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
UV_VERSION  := 0.13.8
STAMP       := $(VENV)/.installed-stamp
# Bytecode: the dependencies are compiled at install (uv's --compile-bytecode) and the project's packages before
# each run (`bytecode`), so a process reads .pyc files instead of compiling some 4,000 modules: about 4 s of every
# `whalecopy` start where PYTHONDONTWRITEBYTECODE is set (as on these machines: Python then never writes them)
SOURCES     := assets orchestration quality live dashboard

export GX_ANALYTICS_ENABLED := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export WAREHOUSE_PATH ?= $(CURDIR)/data/warehouse.duckdb

.PHONY: install bytecode demo live-demo test test-long ui dashboard dashboard-screenshots bench lint lock clean chromium

install: $(STAMP)

# only the modules changed since their last compile are compiled again (a second or less)
bytecode: $(STAMP)
	@$(PY) -m compileall -q -j 0 $(SOURCES) >/dev/null

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync -q --compile-bytecode --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	@mkdir -p $(DAGSTER_HOME) data
	@test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	@touch $@

demo: $(STAMP) bytecode
	$(VENV)/bin/whalecopy demo

# a batch through three days before the simulated world's end, then those days live on loopback (about a minute)
live-demo: $(STAMP) bytecode
	$(VENV)/bin/whalecopy live-demo

# Two parts: every test but the live loop's in TEST_WORKERS processes (a test file per worker, so a module's
# fixtures are built once), then the live loop's own (marked serial: it runs in accelerated real time, and a
# neighbour's load would move its clock) alone. The dbt manifest is prepared first, so no two workers parse it.
# Three workers on two cores: the tests wait on subprocesses, servers and browsers for about a third of the time.
TEST_WORKERS ?= 3
test: $(STAMP) bytecode chromium
	$(PY) -c "from assets.transform.project import prepare_manifest; prepare_manifest()"
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not serial and not long"
	$(PY) -m pytest -q -m serial

# the whole-job repetitions (twenty kills then a resume, thirty daily increments against a full build, the job run
# twice more, a sync through a throttling API): 2m37s on a fresh clone on 2026-12-06 (about eight minutes before the
# dependencies were compiled to bytecode); CI runs them after `make test` (.ci/run)
test-long: $(STAMP) bytecode
	$(PY) -c "from assets.transform.project import prepare_manifest; prepare_manifest()"
	$(PY) -m pytest -q -n 2 --dist loadfile -m long

# Debian's chromium for the report's headless-browser test; where apt-get cannot install it the test is skipped.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "make: could not install chromium: the report's browser test will be skipped"; }

ui: $(STAMP)
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# the monitoring dashboard on 127.0.0.1:8501 (WHALECOPY_DASHBOARD_PORT), reading the warehouse and live store
dashboard: $(STAMP)
	$(VENV)/bin/whalecopy dashboard

# the README's screenshots of the dashboard, taken by its browser test
dashboard-screenshots: $(STAMP) chromium
	WHALECOPY_SCREENSHOT_DIR=$(CURDIR)/docs/dashboard $(PY) -m pytest -q tests/dashboard -k chromium

bench: $(STAMP) bytecode
	$(PY) bench/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Re-pin after editing pyproject.toml (needs only the package index).
lock:
	@test -x $(VENV)/bin/uv || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q uv==$(UV_VERSION); }
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		--no-header -o requirements.lock

clean:
	rm -rf $(VENV) data/*.duckdb* .dagster_home dbt_project/target dbt_project/logs
