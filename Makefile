# Quick start: `make train` then `make test`. Each sets up .venv/ first (quick when already done).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.digitocr-installed

.PHONY: setup browser postgres lint data train reader test test-fast notebook clean

setup: $(STAMP)

# Re-run the install only when the declared dependencies change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The browser tests need Chromium: Debian's (installed when root with apt-get), else Playwright's own build.
browser: setup
	sh scripts/ensure-browser.sh $(BIN)/python

# The tuning tests start a PostgreSQL server of their own: Debian's programs (installed when root with apt-get).
postgres: setup
	sh scripts/ensure-postgres.sh $(BIN)/python

data: setup
	$(BIN)/digitocr data

train: setup
	$(BIN)/digitocr train

# Retrain a model that ships in the package (src/digitocr/shipped/) from scratch with its recorded recipe, export
# its ONNX copy and measure it for its card: `make reader` the digit classifier (about 20 minutes on 2 cores),
# `make reader NAME=lines` the line reader (about 30). Commit the files it writes.
NAME ?= reader
reader: setup
	$(BIN)/python scripts/make_reader.py --name $(NAME)

# The code's habits the tools keep (configured in pyproject.toml): run before the tests, so CI checks them too.
lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

test: setup browser postgres lint
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# Re-run the guided notebook in place, so its committed outputs come from the current code (about 2 minutes).
notebook: setup
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 \
		--ExecutePreprocessor.kernel_name=python3 handwritten_digit_recognition.ipynb

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
