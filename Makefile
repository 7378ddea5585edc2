# One obvious command per task. `make serve` and `make test` are the README's quick start.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# The browser tests (tests/browser) drive Debian's Chromium; Playwright never downloads one.
CHROMIUM ?= /usr/bin/chromium
# Old interpreters (Maya ships 3.7) that the stdlib-only client is also tested under, where present.
CLIENT_TEST_PYTHONS ?= $(shell ls -d /root/.pyenv/versions/3.7*/bin/python /root/.pyenv/versions/3.8*/bin/python 2>/dev/null | paste -sd:)
export CLIENT_TEST_PYTHONS

.PHONY: install serve worker test test-fast test-browser lint check bench clean

# The torch pin goes in first, so that no later requirement can pull a newer (CUDA) build.
$(BIN)/sgt: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(BIN)/sgt

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

install: $(BIN)/sgt $(CHROMIUM)

# Serving needs no browser (and no root for apt-get): only the tests install Chromium.
serve: $(BIN)/sgt
	$(BIN)/sgt serve

worker: $(BIN)/sgt
	$(BIN)/sgt worker

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

test-browser: install
	$(BIN)/python -m pytest -q -s tests/browser

lint: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

check: install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
