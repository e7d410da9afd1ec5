# `make demo` runs the whole product; `make test` runs every test. Both set up .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install demo test lint browser postgres promtool node bench fuzz clean

# uv installs the same wheels as pip, several times faster; it is itself a pip install away.
UV     := $(VENV)/bin/uv
DEMO_STAMP := $(VENV)/.demo-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

$(UV):
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv

$(STAMP): pyproject.toml $(UV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q -e '.[dev,ui,demo]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP) $(DEMO_STAMP)

# The demo needs the runtime, the console and the identity provider: not the test tools.
$(DEMO_STAMP): pyproject.toml $(UV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install -q -e '.[ui,demo]'
	@rm -f $(VENV)/.demo-*
	@touch $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/signoff demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

browser:
	@bash scripts/ensure-browser.sh

postgres:
	@bash scripts/ensure-postgres.sh

promtool:
	@bash scripts/ensure-promtool.sh

node:
	@bash scripts/ensure-node.sh

# Two test processes, each taking whole files (a file's fixtures stay in one process): much
# of the suite waits on servers, browsers and timers, so a second process fills those gaps.
TEST_WORKERS ?= 2

test: $(STAMP) lint browser postgres promtool node
	@$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; \
	exit $$rc

# schemathesis over the whole API, every role, both databases, with many more examples
# than `make test` runs.
fuzz: $(STAMP) postgres
	SIGNOFF_FUZZ_EXAMPLES=$${SIGNOFF_FUZZ_EXAMPLES:-60} $(PY) -m pytest tests/test_fuzz.py -q

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/latency.py
	$(PY) bench/export.py

.PHONY: bench-console
bench-console: $(STAMP) browser
	$(PY) bench/console.py --db sqlite
	$(PY) bench/console.py --db postgres

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache signoff.db signoff.db-*
