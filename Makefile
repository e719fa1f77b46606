# The two commands: `make run` and `make test`. Everything else is what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
HOST ?= 127.0.0.1
export DATA_DIR ?= $(CURDIR)/var

.PHONY: install run test test-sqlite lint bench clean browser openapi tools

$(STAMP): pyproject.toml client/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e ./client  # the Python client and the `automl` CLI
	touch $(STAMP)

install: $(STAMP)

# Deployment checks (checkov, kubernetes-validate) in a venv of their own: checkov's pins must not
# move the project's. tests/platform uses them; without them those tests skip, or fail in CI.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
$(TOOLS_STAMP): platform/tools-requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@{ test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS); } \
	&& $(TOOLS)/bin/python -m pip install --quiet --upgrade pip \
	&& $(TOOLS)/bin/python -m pip install --quiet -r platform/tools-requirements.txt \
	&& touch $(TOOLS_STAMP) \
	|| { echo "*** the deployment tools could not be installed into $(TOOLS): tests/platform's"; \
	     echo "*** checkov and schema checks will skip (and fail in CI)"; \
	     if [ "$$CI" = "true" ]; then exit 1; fi; }

tools: $(TOOLS_STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_specs
	$(BIN)/python manage.py seed_sample_datasets
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# The whole suite: on PostgreSQL in CI (CI=true, required) or with TEST_DB=postgres, else on
# the embedded SQLite. After a PostgreSQL run the event-log suite runs again on SQLite.
test: $(STAMP) browser tools
	$(BIN)/python -m pytest
	@if [ "$$CI" = "true" ] || [ "$$TEST_DB" = "postgres" ]; then \
		TEST_DB=sqlite $(BIN)/python -m pytest tests/eventlog -p no:cacheprovider; fi

# The console's browser tests drive Debian's Chromium (Playwright cannot download browsers
# here). Installed with apt when missing and possible; otherwise they skip, or fail in CI.
CHROMIUM_PATH ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM_PATH)" ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the console's browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null \
		|| { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; } \
		|| echo "*** chromium could not be installed with apt: the console's browser tests will skip (and fail in CI)"; \
	else \
		echo "*** $(CHROMIUM_PATH) is missing and apt-get is not usable as root here: the console's"; \
		echo "*** browser tests will skip (and fail in CI). Install the Debian package chromium."; \
	fi

# The API reference beside docs/: the OpenAPI schema as served, written to a file
# (tests/core/test_openapi_document.py fails when it is stale).
openapi: $(STAMP)
	$(BIN)/python manage.py spectacular --format openapi-json --file docs/openapi.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python bench/eventlog.py
	$(BIN)/python bench/rebuild.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/eval_coco.py
	$(BIN)/python bench/train_overhead.py
	$(BIN)/python bench/predict.py
	$(BIN)/python bench/task_overhead.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/serving.py --shape worker  # as compose's worker-serving
	$(BIN)/python bench/serving.py --shape inprocess
	$(BIN)/python bench/load.py  # needs the local PostgreSQL, Redis and RabbitMQ

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache staticfiles
