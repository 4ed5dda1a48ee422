# make run    set up .venv and run the default main job (the synthetic experiment, no download)
# make test   set up .venv and run the tests
# make setup  only set up: system packages Theano needs, .venv, the project installed into it
# make setup GPU=cuda12   the same, plus JAX with CUDA 12 (extra "gpu") in the same .venv
# make conformance        the same, plus the libraries tests/test_variants.py checks the
#                         AMSGrad variants against (PyTorch, Optax, Keras)
# make gpu-site           .gpu_site/: Theano-PyMC and Lasagne for a NumPy 2 Python with a CUDA JAX
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# GPU builds of JAX that setup installs (setup.py's extra "gpu"); empty: the CPU build only.
GPUS := cuda12
GPU ?=
GPU_SITE ?= .gpu_site

ifneq ($(GPU),)
ifeq ($(filter $(GPU),$(GPUS)),)
$(error unknown GPU=$(GPU); use GPU=$(GPUS) (JAX with CUDA 12), or no GPU= for the CPU build)
endif
endif

.PHONY: setup system run test test-fast gpu-site conformance clean

setup: $(VENV)/.installed $(if $(GPU),$(VENV)/.installed-$(GPU))

system:
	@bash scripts/system_deps.sh

$(VENV)/.installed: setup.py constraints.txt scripts/system_deps.sh
	@bash scripts/system_deps.sh
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	@touch $@

# jax[cuda12]==0.4.30 with the pinned NumPy 1.23.5 (constraints.txt); the CUDA libraries
# come as pip wheels (nvidia-*-cu12), so only the NVIDIA driver is needed on the machine.
$(VENV)/.installed-cuda12: $(VENV)/.installed setup.py constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e ".[test,gpu]"
	@touch $@

# Optax and chex without their dependency check: chex's metadata asks for numpy>=1.24.1,
# the pins keep 1.23.5 (Theano-PyMC), with which what optax.amsgrad uses runs (setup.py).
OPTAX_PINS := optax==0.2.3 chex==0.1.86

conformance: $(VENV)/.installed-conformance

$(VENV)/.installed-conformance: $(VENV)/.installed setup.py constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e ".[test,conformance]"
	$(PY) -m pip install -q --no-deps $(OPTAX_PINS)
	@touch $@

gpu-site: setup
	$(PY) scripts/gpu_site.py $(GPU_SITE)

run: setup
	$(PY) experiments/run.py synthetic

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info $(GPU_SITE)
