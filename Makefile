# Every target creates or reuses the project-local virtual environment (.venv) and installs corral into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

# pip stays quiet (its output is long and says little), so say what is happening before each slow step.
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "corral: creating a Python virtual environment in $(VENV)…"; $(PYTHON) -m venv $(VENV); }
	@echo "corral: installing corral and its dependencies into $(VENV) (about a minute the first time)…"
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)
	@echo "corral: ready: $(VENV)/bin/corral"

demo: $(STAMP)
	@echo "corral: running the demo: one task planned, implemented in waves, reviewed and verified by simulated agents"
	$(VENV)/bin/corral demo --headless

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pytest -q -s -p no:randomly tests/perf

lint: $(STAMP)
	$(VENV)/bin/ruff check actors protocols frontends tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
