# The two commands: `make demo` and `make test`. Both set up what they need.
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test serve setup setup-system setup-fonts setup-bench lint typecheck layers pytest bench clean

$(BIN)/rhip: pyproject.toml uv.lock scripts/bootstrap.sh
	scripts/bootstrap.sh
	@touch $(BIN)/rhip

setup: $(BIN)/rhip

setup-system:
	scripts/bootstrap.sh --system

setup-fonts:
	scripts/bootstrap.sh --fonts

setup-bench:
	scripts/bootstrap.sh --bench

demo: setup setup-fonts
	$(BIN)/rhip demo

serve: setup setup-fonts
	$(BIN)/rhip demo --serve

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

layers: setup
	$(BIN)/lint-imports

pytest: setup
	$(BIN)/pytest -q

test: setup-system lint typecheck layers pytest

bench: setup setup-bench
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
