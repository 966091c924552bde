# Model Compression & Acceleration with TensorFlow: every command sets itself up.
#   make course   run every notebook in full mode: results/*.json, stored outputs, timings
#   make test     unit tests + every notebook in fast mode (what CI runs)
#   make lab      open JupyterLab on the notebooks
#   make book     build the course book (a static website) from the stored outputs
#   make warmup   run every notebook once in fast mode to cache its models and time it
#   make mutation mutation-test the helpers and check the known bugs: docs/mutation.md (hours)
# Each target creates .venv and installs requirements.txt on first use (needs only python3).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: course test lab warmup lint format readme help mutation book

help:
	@sed -n '2,8p' Makefile

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m course_lib.quiet
	touch $(STAMP)

course: $(STAMP)
	$(BIN)/python -m course_lib.runner

# One TensorFlow thread per pytest worker: the two workers already fill two cores, and two
# threads each made the whole run slower when it was measured on 2 cores (see issue 17).
test: $(STAMP)
	$(BIN)/python -m course_lib.quiet >/dev/null
	COURSE_FAST=1 TF_CPP_MIN_LOG_LEVEL=3 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \
		$(BIN)/python -m pytest --nbval-lax \
		--nbval-cell-timeout=900 --durations=10 -n 2 tests notebooks

lab: $(STAMP)
	$(BIN)/python -m course_lib.quiet
	$(BIN)/jupyter lab notebooks/

book: $(STAMP)
	$(BIN)/python -m course_lib.book

warmup: $(STAMP)
	$(BIN)/python -m course_lib.runner --fast

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

mutation: $(STAMP)
	$(BIN)/python -m course_lib.mutation

readme: $(STAMP)
	$(BIN)/python -m course_lib.readme
