# One-word commands shared by people and CI.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test unit lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: install  ## simulate a delivery day on the embedded broker and chdb, print KPIs
	$(VENV)/bin/milestream demo

test: install  ## unit + integration tests (real Tansu broker, Faust worker, chdb)
	$(PY) -m pytest

unit: install
	$(PY) -m pytest tests/unit

bench: install  ## solver vs best-known, PyVRP and VROOM; scale; re-planning (about 15 minutes; not a test)
	$(PY) -m pip install -q -e '.[bench]'
	$(VENV)/bin/milestream bench solver --time-limit 10 --jobs 2
	$(VENV)/bin/milestream bench scale
	$(VENV)/bin/milestream bench reopt

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
