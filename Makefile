# Two commands on a fresh machine: `make run` serves the agent, `make test` checks everything.
# Both install what they need first (uv, then the locked dependencies into .venv).

UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup run test lint typecheck format bench

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.5"
	@$(UV) sync --frozen --quiet

run: setup
	$(UV) run weather-agent serve

test: setup lint typecheck
	$(UV) run pytest

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck:
	$(UV) run mypy

format: setup
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

bench: setup
	$(UV) run python -m bench
