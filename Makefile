# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0

.PHONY: setup test test-core test-web demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# `make test` = the library suite in .venv, then the web front-end's suite with the browser tests
# in .venv-web (needs Debian's chromium and Mesa EGL; .ci/run installs them). `make test-core`
# is the first half alone, for a machine without a browser.
test: test-core test-web

test-core: setup
	$(PY) -m pytest -q Testing/Python

# The web front-end and its browser tests in their own venv: trame-slicer pins slicer-core 5.11.x.
# Needs: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri chromium (no Xvfb).
WEB_VENV ?= .venv-web
test-web:
	test -x $(WEB_VENV)/bin/python || $(PYTHON) -m venv $(WEB_VENV)
	$(WEB_VENV)/bin/python -m pip install --quiet $(TORCH_PIN)
	$(WEB_VENV)/bin/python -m pip install --quiet -e ".[dev,web,web-test]"
	VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow MICROCTLIKE_WEB_E2E=1 $(WEB_VENV)/bin/python -m pytest -q \
		Testing/Python/test_web.py Testing/Python/test_web_session.py

demo: setup
	$(VENV)/bin/microctlike demo --out demo_out --force

bench: setup
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/bench_thickness.py

clean:
	rm -rf $(VENV) $(WEB_VENV) build *.egg-info demo_out .pytest_cache
