# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
# `make test-fast` runs every test not marked slow (no Ray, DDP, Chromium or demo): quick feedback.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tc3d-installed
TEST_STAMP := $(VENV)/.tc3d-test-installed

.PHONY: demo test test-fast lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first: the pinned CPU wheel on disk, never a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,serve]'
	touch $(STAMP)

# The tests also run tag/features on a real Ray cluster: only `make test` pays for Ray.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/tc3d demo --out demo_run

test: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) demo_run .pytest_cache
