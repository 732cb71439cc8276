# Two commands for a fresh clone:  `make demo` (set up + main job)  and  `make test` (set up + all tests).
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/tokentree build --builtin pydoc --depth 8 --mode chunk -o runs/demo/pydoc.npz
	$(VENV)/bin/tokentree info runs/demo/pydoc.npz

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check tokentree tests experiments benchmarks
	$(VENV)/bin/mypy tokentree

bench: setup
	$(PY) benchmarks/bench_build.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
