# The commands of the README: `make demo` (set up .venv and run the main job), `make test` (everything:
# what CI runs) and `make check` (the inner loop: lint, then the tests that neither train with TensorFlow,
# start a model server (slow) nor start a kube-apiserver (envtest), stopping at the first failure).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# The workplace's shared builds (ECVL/EDDL, envtest) beside the clone; absent elsewhere, and then skipped.
SHARED ?= ../shared

.PHONY: setup ecvl demo test check lint benchmarks compile clean

setup: $(STAMP) ecvl

# ECVL/EDDL and pyecvl/pyeddl from $(SHARED)/ecvl when it is there (a no-op once installed, or without it).
ecvl: $(STAMP)
	.ci/install-ecvl $(SHARED) $(VENV)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(VENV)/bin/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/distml demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -x -m "not slow and not envtest"

benchmarks: setup
	$(VENV)/bin/python benchmarks/split.py

clean:
	rm -rf $(VENV) build *.egg-info demo-output
