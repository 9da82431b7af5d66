# The two commands that do everything on a fresh machine:
#   make demo   - install, then run the demo on the shipped sample identity
#   make test   - install, then run the default test suite (< 20 min on 2 cores)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-all bench cuda-check clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip install -q -c requirements.txt $$($(PY) tools/extra_requirements.py voices studio cluster)
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq espeak-ng) >/dev/null; } \
		|| echo "note: espeak-ng is not installed (scripts in languages other than English need it); run: sudo apt-get install espeak-ng"
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1; } \
		|| echo "note: chromium is not installed (only the report screenshot and studio browser tests use it); run: sudo apt-get install chromium"
	touch $(STAMP)

demo: install
	$(VENV)/bin/nerfhead demo

test: install
	$(PY) -m pytest -q -m "not slow" --durations=15

test-slow: install
	$(PY) -m pytest -q -m slow

test-all: install
	$(PY) -m pytest -q

# Compile the CUDA kernels against a CUDA build of torch in a separate environment (no GPU needed;
# with a GPU it also runs the kernel tests on it). About 5.5 GB of disk for that torch.
CUDA_VENV ?= .venv-cuda
cuda-check:
	@command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || { echo "cuda-check: no nvcc (install the CUDA toolkit)"; exit 2; }
	[ -x $(CUDA_VENV)/bin/python ] || $(PYTHON) -m venv $(CUDA_VENV)
	$(CUDA_VENV)/bin/python -m pip install -q "torch==2.14.1" ninja "setuptools<81" numpy rich pytest
	NERFHEAD_BUILD_DIR=$(CURDIR)/build/cuda-check $(CUDA_VENV)/bin/python tools/cuda_check.py

bench: install
	$(PY) tools/bench_kernels.py

clean:
	rm -rf $(VENV) $(CUDA_VENV) build *.egg-info
