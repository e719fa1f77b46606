# The two commands: `make run` and `make test`. Everything else is what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
HOST ?= 127.0.0.1
export DATA_DIR ?= $(CURDIR)/var

.PHONY: install run test test-sqlite lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_specs
	$(BIN)/python manage.py seed_sample_datasets
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# The whole suite: on PostgreSQL in CI (CI=true, required) or with TEST_DB=postgres, else on
# the embedded SQLite. After a PostgreSQL run the event-log suite runs again on SQLite.
test: $(STAMP)
	$(BIN)/python -m pytest
	@if [ "$$CI" = "true" ] || [ "$$TEST_DB" = "postgres" ]; then \
		TEST_DB=sqlite $(BIN)/python -m pytest tests/eventlog -p no:cacheprovider; fi

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/eventlog.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/eval_coco.py
	$(BIN)/python bench/train_overhead.py
	$(BIN)/python bench/predict.py
	$(BIN)/python bench/task_overhead.py

clean:
	rm -rf $(VENV) var .pytest_cache
