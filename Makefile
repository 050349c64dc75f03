# One command per habit. Everything installs into .venv in the repo root.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KB     := $(VENV)/bin/kb
DEMO_HOME := .kb-demo

.PHONY: demo test lint test-soak bench bench-quick bench-load bench-avx2 install install-dev clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# torch==2.13.0 is pinned in pyproject.toml, so it resolves in the same pip command as
# sentence-transformers: that version is a CPU build, any other pulls a CUDA build.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -e ".[dev]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PY) -m pip install -e ".[dev,bench]"
	touch $@ $(VENV)/.installed $(VENV)/.installed-dev

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	rm -rf $(DEMO_HOME)
	KB_HOME=$(DEMO_HOME) $(KB) ingest sample_corpus
	KB_HOME=$(DEMO_HOME) $(KB) ingest sample_corpus
	KB_HOME=$(DEMO_HOME) $(KB) search "how many eggs does a queen lay in a day" -k 3
	KB_HOME=$(DEMO_HOME) $(KB) ask "When should I treat varroa with oxalic acid?"
	KB_HOME=$(DEMO_HOME) $(KB) ask "When should I treat varroa with oxalic acid?"

test: lint
	$(PY) -m pytest -q

# ruff (lint and format check) over everything, mypy over the package.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The long variants of the fault tests: 100 SIGKILLs, and kills with the real model.
test-soak: install-dev
	$(PY) -m pytest -q -m soak

# Every performance target next to its goal (benchmarks/run.py; docs/benchmarks.md).
bench: $(VENV)/.installed-bench
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# kb serve under load: 1, 8 and 32 clients, micro-batching on and off (benchmarks/load.py).
bench-load: $(VENV)/.installed-dev
	$(PY) benchmarks/load.py $(BENCH_ARGS)

bench-quick: $(VENV)/.installed-bench
	$(PY) benchmarks/run.py --quick $(BENCH_ARGS)

# The same on AVX2 code paths (no AVX-512, bf16, VNNI, AMX), on a CPU that has more.
bench-avx2: $(VENV)/.installed-bench
	$(PY) benchmarks/avx2/emulate.py $(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
