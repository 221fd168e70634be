# The README's commands. `make run` and `make test` each do all set-up first (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INDEX  ?= index
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 2

.PHONY: run test test-all setup index serve eval bench lint clean

run: setup index serve  ## set up, build the index from the shipped library, serve the API

test: setup  ## set up, then run the whole default test suite
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup  ## also the slow tests (Spark, soak, real-model evaluation)
	$(BIN)/python -m pytest -q

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/setup.sh
	touch $@

index: setup
	$(BIN)/recommender build-index --index-dir $(INDEX)

serve: setup
	$(BIN)/recommender serve --index-dir $(INDEX) --host $(HOST) --port $(PORT) --workers $(WORKERS)

eval: setup  ## nDCG@10 and tagging F1 on held-out vendors of the development set
	$(BIN)/recommender evaluate-holdout

bench: setup  ## the benchmark suite; writes benchmarks/results/
	$(BIN)/python -m benchmarks

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache .ruff_cache
