# The two commands a new user needs: `make test` and `make demo`.
# Everything runs from the checkout's own virtual environment (.venv/, made by scripts/setup.sh).
VENV := $(CURDIR)/.venv
PYTHON := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)

.PHONY: setup test lint unit crds crds-check demo bench

# Installs Debian's prometheus and the Python package once (again when they change).
SETUP_STAMP := build/.setup-done
$(SETUP_STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(SETUP_STAMP)

lint:
	ruff check .
	ruff format --check .
	mypy --strict
	lint-imports

unit:
	$(PYTHON) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

test: $(SETUP_STAMP)
	$(MAKE) lint crds-check unit

crds:
	$(PYTHON) -m airlock crds --write crds/ --write charts/airlock/crds/
	$(PYTHON) -m airlock admission --write policies/admission/ --write charts/airlock/files/

crds-check:
	@tmp=$$(mktemp -d) && $(PYTHON) -m airlock crds --write $$tmp/ >/dev/null && \
	  diff -ru crds/ $$tmp/ && diff -ru charts/airlock/crds/ $$tmp/ && rm -rf $$tmp && \
	  echo "crds: up to date with the models"
	@tmp=$$(mktemp -d) && $(PYTHON) -m airlock admission --write $$tmp/ >/dev/null && \
	  diff -u policies/admission/webhook.yaml $$tmp/webhook.yaml && \
	  diff -u policies/admission/validating-admission-policy.yaml $$tmp/validating-admission-policy.yaml && \
	  diff -u charts/airlock/files/webhook.yaml $$tmp/webhook.yaml && \
	  diff -u charts/airlock/files/validating-admission-policy.yaml $$tmp/validating-admission-policy.yaml && \
	  rm -rf $$tmp && echo "admission manifests: up to date with the API"

demo: $(SETUP_STAMP)
	$(PYTHON) -m airlock demo

bench: $(SETUP_STAMP)
	$(PYTHON) benchmarks/time_to_contain.py --runs 20 --interval 5s
	$(PYTHON) benchmarks/time_to_contain.py --runs 20 --interval 15s
