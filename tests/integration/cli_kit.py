"""Running the installed `corral` as a real process, the way a user or an agent does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from protocols.config import MANAGED_ENV_KEYS

CORRAL = str(Path(sys.executable).with_name("corral"))
# corral's session variables (a test run inside a corral agent must not inherit its role), and git overrides.
_STRIPPED = MANAGED_ENV_KEYS | {
    "CORRAL_DEBUG",
    "CORRAL_SIM_PLAN",
    "CORRAL_SIM_REVIEW",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
}


def clean_env() -> dict[str, str]:
    """The test's environment without corral's session variables or a git override."""
    return {k: v for k, v in os.environ.items() if k not in _STRIPPED}


def corral(cwd: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `corral ARGS` in `cwd` with `clean_env()` plus `env`."""
    full_env = clean_env() | env
    return subprocess.run(
        [CORRAL, *args],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


AUTOSTART_NOTICE = re.compile(r"started the corral daemon, pid \d+( \(it had been stopped with .*\))?\n")
"""The one line a command that started the daemon prints on stderr (frontends/cli/autostart.py)."""


def ok(cwd: Path, *args: str, stdin: str | None = None, **env: str) -> str:
    """Run a command that must succeed silently on stderr — but for the line saying it started the daemon,
    which tests of autostart check themselves; return its stdout."""
    result = corral(cwd, *args, stdin=stdin, **env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" or AUTOSTART_NOTICE.fullmatch(result.stderr), result.stderr
    return result.stdout


def fails(cwd: Path, code: int, *args: str, **env: str) -> str:
    """Run a command that must fail with `code` and no traceback; return its error message, unprefixed."""
    result = corral(cwd, *args, **env)
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("corral: error: ")
    return last.removeprefix("corral: error: ")
