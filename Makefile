# The two commands a new user needs: `make test` and `make demo`.
PYTHON ?= python3

.PHONY: test lint unit crds crds-check demo install bench

install:
	$(PYTHON) -m pip install -q -e '.[dev]'

lint:
	ruff check .
	ruff format --check .
	mypy --strict
	lint-imports

unit:
	$(PYTHON) -m pytest -q

test: lint crds-check unit

crds:
	$(PYTHON) -m airlock crds --write crds/ --write charts/airlock/crds/

crds-check:
	@tmp=$$(mktemp -d) && $(PYTHON) -m airlock crds --write $$tmp/ >/dev/null && \
	  diff -ru crds/ $$tmp/ && diff -ru charts/airlock/crds/ $$tmp/ && rm -rf $$tmp && \
	  echo "crds: up to date with the models"

demo:
	$(PYTHON) -m airlock demo

bench:
	$(PYTHON) benchmarks/time_to_contain.py
