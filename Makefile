# The two commands that do everything on a fresh machine:
#   make demo   - install, then run the demo on the shipped sample identity
#   make test   - install, then run the default test suite (< 20 min on 2 cores)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow test-all bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@command -v espeak-ng >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq espeak-ng) >/dev/null; } \
		|| echo "note: espeak-ng is not installed (needed only for --text); run: sudo apt-get install espeak-ng"
	touch $(STAMP)

demo: install
	$(VENV)/bin/nerfhead demo

test: install
	$(PY) -m pytest -q -m "not slow"

test-slow: install
	$(PY) -m pytest -q -m slow

test-all: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
