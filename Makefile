# Every target creates or reuses the project-local virtual environment (.venv) and installs corral into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/corral demo --headless

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pytest -q -s -p no:randomly tests/perf

lint: $(STAMP)
	$(VENV)/bin/ruff check actors protocols frontends tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
