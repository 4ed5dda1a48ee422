# make run    set up .venv and run the default main job (the synthetic experiment, no download)
# make test   set up .venv and run the tests
# make setup  only set up: system packages Theano needs, .venv, the project installed into it
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup system run test test-fast clean

setup: $(VENV)/.installed

system:
	@bash scripts/system_deps.sh

$(VENV)/.installed: setup.py constraints.txt scripts/system_deps.sh
	@bash scripts/system_deps.sh
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	@touch $@

run: setup
	$(PY) experiments/run.py synthetic

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
