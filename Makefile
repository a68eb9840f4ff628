# Every target creates or reuses the project-local virtual environment (.venv) and installs corral into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean agents

# pip stays quiet (its output is long and says little), so say what is happening before each slow step.
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "corral: creating a Python virtual environment in $(VENV)…"; $(PYTHON) -m venv $(VENV); }
	@echo "corral: installing corral and its dependencies into $(VENV) (about a minute the first time)…"
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)
	@echo "corral: ready: $(VENV)/bin/corral"

# The real agent CLIs, at the versions the tests were measured with, installed with npm into a cache of this
# checkout (never globally); the tests that run them look there (tests/agents_kit.py) and are skipped, with the
# reason, without them. npm gives up soon when the registry does not answer: an offline machine is not held up.
AGENTS          := .cache/agents
CLAUDE_CODE_PIN := 2.1.197
CODEX_PIN       := 0.171.0
AGENTS_STAMP    := $(AGENTS)/.installed-$(CLAUDE_CODE_PIN)-$(CODEX_PIN)

agents: $(AGENTS_STAMP)

$(AGENTS_STAMP):
	@command -v npm >/dev/null || { echo "corral: npm is missing: install node and npm to run the real agent CLIs"; exit 1; }
	@echo "corral: installing @anthropic-ai/claude-code@$(CLAUDE_CODE_PIN) and @openai/codex@$(CODEX_PIN) into $(AGENTS)…"
	@mkdir -p $(AGENTS)
	npm install --prefix $(AGENTS) --no-audit --no-fund --loglevel=error --fetch-timeout=30000 --fetch-retries=1 \
		@anthropic-ai/claude-code@$(CLAUDE_CODE_PIN) @openai/codex@$(CODEX_PIN)
	@touch $@
	@echo "corral: ready: $(AGENTS)/node_modules/.bin/claude and $(AGENTS)/node_modules/.bin/codex"

demo: $(STAMP)
	@echo "corral: running the demo: one task planned, implemented in waves, reviewed and verified by simulated agents"
	$(VENV)/bin/corral demo --headless

# The real agent CLIs are tried first; where npm cannot install them, their tests are skipped with the reason.
test: $(STAMP)
	@$(MAKE) --no-print-directory agents || echo "corral: the real agent CLIs are not installed: their tests will be skipped"
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pytest -q -s -p no:randomly tests/perf

lint: $(STAMP)
	$(VENV)/bin/ruff check actors protocols frontends tests

clean:
	rm -rf $(VENV) .cache build *.egg-info .pytest_cache
