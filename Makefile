# `make demo` runs the whole product; `make test` runs every test. Both set up .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install demo test lint browser postgres promtool node bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,ui,demo]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
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

test: $(STAMP) lint browser postgres promtool node
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; \
	exit $$rc

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
