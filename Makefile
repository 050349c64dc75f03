# One command per habit. Everything installs into .venv in the repo root; install-dev also
# installs the Debian packages redis-server, haproxy and chromium when they are missing (system-deps).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KB     := $(VENV)/bin/kb
DEMO_HOME := .kb-demo

.PHONY: demo test lint test-soak bench bench-serve bench-quick bench-load bench-cluster bench-avx2 install install-dev system-deps \
	cluster cluster-stop clean

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
install-dev: $(VENV)/.installed-dev system-deps

# redis-server and haproxy, which the scale-out tests and make cluster run, and chromium, the
# browser the web page's tests drive (Playwright's own browser download is never used):
# apt-get installs them only when missing, and only as root; otherwise this says what to run,
# and the tests that need them are skipped. /usr/sbin is not on a normal user's PATH, hence
# the -x checks.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "missing:$$missing. Install them (Debian/Ubuntu: sudo apt-get install$$missing);" \
			"until then the tests that need them are skipped and make cluster fails."; \
		exit 0; \
	fi; \
	echo "installing$$missing (apt-get)"; \
	if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing; }; then \
		echo "apt-get could not install$$missing (see above); the tests that need them are skipped" \
			"and make cluster fails until they are installed."; \
	fi

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
	$(PY) benchmarks/serve.py

# kb serve against the FastAPI script a user would write instead (benchmarks/serve.py).
bench-serve: $(VENV)/.installed-dev
	$(PY) benchmarks/serve.py $(BENCH_ARGS)

# kb serve under load: 1, 8 and 32 clients, micro-batching on and off (benchmarks/load.py).
bench-load: $(VENV)/.installed-dev
	$(PY) benchmarks/load.py $(BENCH_ARGS)

# A local cluster under load (benchmarks/cluster_load.py): search through HAProxy with one and
# two kb serve instances and directly against one, then one instance SIGKILLed mid-run while
# ingest jobs are queued. Needs redis-server and haproxy (system-deps); about 3 minutes.
bench-cluster: $(VENV)/.installed-dev system-deps
	$(PY) benchmarks/cluster_load.py $(BENCH_ARGS)

bench-quick: $(VENV)/.installed-bench
	$(PY) benchmarks/run.py --quick $(BENCH_ARGS)

# The same on AVX2 code paths (no AVX-512, bf16, VNNI, AMX), on a CPU that has more.
bench-avx2: $(VENV)/.installed-bench
	$(PY) benchmarks/avx2/emulate.py $(PY) benchmarks/run.py $(BENCH_ARGS)

# A local cluster on 127.0.0.1 (scripts/cluster.py; docs/deploy.md for real machines):
# redis-server, chroma run, two kb serve behind HAProxy, one kb worker, in the background.
# Pids, logs and data in .kb-cluster/ (KB_CLUSTER_DIR); the last line is the balancer's URL
# (KB_CLUSTER_PORT fixes its port). KB_SERVE_TOKENS, when set, reaches the instances.
cluster: install system-deps
	$(PY) scripts/cluster.py start

# SIGTERM to each process of make cluster by its pid, SIGKILL after 35 s; nothing running: no-op.
cluster-stop:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/cluster.py stop

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
