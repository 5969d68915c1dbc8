# The two commands of the quickstart: `make demo` and `make test`.
# Both work on a fresh clone: they create .venv and install what they need, and do
# nothing again when nothing changed (the stamps depend on pyproject.toml).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
DEV := $(VENV)/.installed-dev
CHROMIUM := /usr/bin/chromium
PORT ?= 8501
ARTIFACTS ?= test-artifacts
PYTEST_WORKERS ?= 2

.PHONY: demo test lint bench browser clean help

help:
	@echo "make demo   set up, generate the demo organisation, run the pipeline, serve the app"
	@echo "make test   set up everything the tests need, then run them all"
	@echo "make lint   ruff and mypy --strict"
	@echo "make bench  the benchmarks (prints wall time, peak memory, ratios)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(BASE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(BASE)

# Debian's Chromium for the browser tests (never a downloaded browser build), and a Java
# runtime for the Spark test, when the machine lacks them.
browser:
	@missing=""; \
	[ -x $(CHROMIUM) ] || missing="$$missing chromium fonts-dejavu-core"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
			$$missing >/dev/null; \
	fi
	@$(CHROMIUM) --version && java -version 2>&1 | head -1

demo: $(BASE)
	$(BIN)/finops demo --port $(PORT)

test: $(DEV) browser
	mkdir -p $(ARTIFACTS)
	FINOPS_TEST_ARTIFACTS=$(abspath $(ARTIFACTS)) TZ=UTC \
		$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=15

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/mypy finops collectors models reports

bench: $(DEV)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data/warehouse $(ARTIFACTS) .mypy_cache .ruff_cache .pytest_cache
