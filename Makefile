# `make demo` and `make test` each set up everything they need, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-api test-e2e lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build that lies on this machine's disk: left to itself,
	# the [train] extra's range would pull a multi-GB CUDA build (see DEVELOPERS.md).
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[train,postgres,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ganwatch demo

test: $(STAMP)
	$(PY) -m pytest

# the pure tests (no server process, no network): seconds, for the edit-test loop
test-unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

test-api: $(STAMP)
	$(PY) -m pytest tests/api -q

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e -q

lint: $(STAMP)
	$(VENV)/bin/ruff check ganwatch monitor trainer_client tests bench

bench: $(STAMP)
	$(PY) bench/client_overhead.py
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .ganwatch .ganwatch-demo .pytest_cache
