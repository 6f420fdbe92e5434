# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
# `make test-fast` runs every test not marked slow (no Ray, DDP, Chromium or demo): quick feedback.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tc3d-installed
TEST_STAMP := $(VENV)/.tc3d-test-installed

.PHONY: demo test test-fast lint format clean

# (pip compiles every file at install time: keep it, since PYTHONDONTWRITEBYTECODE=1, which CI
# sets, would otherwise make every process compile torch's modules again on import.)
PIP := $(BIN)/pip install --quiet

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first: the pinned CPU wheel on disk, never a multi-GB CUDA build.
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev,serve,int8]'
	touch $(STAMP)

# The tests also run tag/features on a real Ray cluster: only `make test` pays for Ray. A fresh
# checkout installs everything in one pass.
$(TEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev,serve,int8,ray]'
	touch $(STAMP) $(TEST_STAMP)

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
