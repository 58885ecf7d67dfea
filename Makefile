# The two commands a newcomer needs: `make demo` and `make test`. Both build .venv on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench chaos migration clean

$(BIN)/followup: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/followup
	$(BIN)/followup demo

test: lint typecheck pytest

lint: $(BIN)/followup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/followup
	$(BIN)/mypy .

# Everything, on SQLite and PostgreSQL, the SIGKILL chaos test included at its CI size.
pytest: $(BIN)/followup
	$(BIN)/pytest -q -p no:cacheprovider

# The full-size SIGKILL chaos run on its own (docs/reliability.md): 200 participants, 30 kills.
CHAOS_PARTICIPANTS ?= 200
CHAOS_KILLS ?= 30
chaos: $(BIN)/followup
	FOLLOWUP_CHAOS_PARTICIPANTS=$(CHAOS_PARTICIPANTS) FOLLOWUP_CHAOS_KILLS=$(CHAOS_KILLS) \
		$(BIN)/pytest -q -p no:cacheprovider -m chaos -s

# make bench BENCH="--only conversation --write": one figure, recorded in docs/benchmarks.md.
bench: $(BIN)/followup
	$(BIN)/python -m bench $(BENCH)

# make migration m="what changed": autogenerate a revision against a scratch database at head.
migration: $(BIN)/followup
	rm -f /tmp/followup-migration.db
	FOLLOWUP_DATABASE_URL=sqlite:////tmp/followup-migration.db $(BIN)/followup init
	$(BIN)/alembic -c alembic.ini -x url=sqlite:////tmp/followup-migration.db revision --autogenerate -m "$(m)"
	$(BIN)/ruff format migrations

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output
