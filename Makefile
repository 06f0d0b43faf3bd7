# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0

.PHONY: setup test demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev,web]"
	touch $@

test: setup
	$(PY) -m pytest -q Testing/Python

demo: setup
	$(VENV)/bin/microctlike demo --out demo_out --force

bench: setup
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/bench_thickness.py

clean:
	rm -rf $(VENV) build *.egg-info demo_out .pytest_cache
