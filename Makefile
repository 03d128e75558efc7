# `make test` and `make demo` bootstrap everything from a machine with only Python and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo package-check clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ledger needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest -q -n 2

demo: $(STAMP)
	$(BIN)/ledger demo

# A non-editable install into a fresh virtualenv, then `ledger init` in an empty directory: proves
# the migrations and data files ship inside the wheel.
package-check:
	rm -rf build/package-check && mkdir -p build/package-check/empty
	$(PYTHON) -m venv build/package-check/venv
	build/package-check/venv/bin/python -m pip install -q .
	cd build/package-check/empty && ../venv/bin/ledger init && ../venv/bin/ledger status \
		&& ../venv/bin/ledger sql "select count(*) as jobs from jobs"

clean:
	rm -rf $(VENV) build *.egg-info .demo
