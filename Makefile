# The two commands a newcomer needs: `make demo` and `make test`. Both set up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench
setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/edgeprune build examples/default.toml --out demo-out

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov=edgeprune --cov-report=term:skip-covered

bench: setup
	@echo "benchmarks are scripts: $(BIN)/python bench/<name>.py (results go to bench/results/)"
