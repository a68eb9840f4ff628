"""Finding the real agent CLIs (Claude Code, Codex) for the tests that run them.

    claude = find_cli("claude")    # or pytest.skip, with the reason

Looked for in CORRAL_TEST_CLI_PATH (a directory holding `claude` / `codex`), then in the checkout's
`.cache/agents` (where `make agents` installs the pinned versions with npm), then on PATH. Where none has
it, the test is skipped visibly, with the reason and the command that installs it (pytest -ra lists it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

__all__ = ["AGENTS_BIN", "find_cli"]

AGENTS_BIN = Path(__file__).resolve().parents[1] / ".cache" / "agents" / "node_modules" / ".bin"


def find_cli(name: str) -> str:
    path = os.pathsep.join(
        [os.environ.get("CORRAL_TEST_CLI_PATH", ""), str(AGENTS_BIN), os.environ.get("PATH", "")]
    )
    found = shutil.which(name, path=path)
    if found is None:
        pytest.skip(f"the real `{name}` CLI is not installed (`make agents` installs it into .cache/agents)")
    return found
