"""`corral doctor`: check that this machine can run corral, and say how to fix what it cannot.

    ok    python    3.11.7 (/usr/bin/python3)
    FAIL  tmux      not found on PATH
          fix: install tmux ≥ 3.0: apt-get install tmux

Each check is a small function returning a `Check`; the table `_CHECKS` lists them in order. git, tmux ≥ 3.0,
the data directory and the database are required (a failure exits 1); nice and ionice are optional (without
them the resource controls — lower CPU and I/O priority for agents — are skipped). doctor works anywhere: it
does not need a git repository. Every external program runs from an argv list with a timeout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

from frontends.cli.output import HelpFormatter

__all__ = ["MIN_TMUX", "Check", "parse_tmux_version", "register", "run_checks"]

MIN_TMUX = (3, 0)
_TIMEOUT_S = 5.0

Level = Literal["ok", "warn", "FAIL"]


class Check(msgspec.Struct, frozen=True):
    """The outcome of one check: `fix` says what to do when `level` is not ok."""

    name: str
    level: Level
    detail: str
    fix: str = ""
    required: bool = True


def register(groups: Any, summary: str) -> None:
    parser = groups.add_parser(
        "doctor",
        help=summary,
        description="Check that this machine can run corral: python, git, tmux (≥ 3.0), nice and ionice "
        "(optional: without them resource controls are skipped), the data directory and the database "
        "(opens, migrates, PRAGMA quick_check). One line per check: ok | warn | FAIL, its name, a detail, "
        "and for each problem how to fix it. Exits 1 when a required check fails, else 0. Works outside a "
        "git repository.",
        epilog="examples:\n  corral doctor\n"
        "  corral doctor --json | jq '.checks[] | select(.level != \"ok\")'",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help='print {"ok": bool, "checks": [...]} as JSON')
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    healthy = not any(c.required and c.level == "FAIL" for c in checks)
    if args.json:
        from frontends.cli.output import print_json

        print_json({"ok": healthy, "checks": checks})
    else:
        print(_report(checks, healthy))
    return 0 if healthy else 1


def run_checks() -> list[Check]:
    return [check() for check in _CHECKS]


def _report(checks: list[Check], healthy: bool) -> str:
    width = max(len(c.name) for c in checks) + 2
    lines = []
    for c in checks:
        lines.append(f"{c.level:<6}{c.name:<{width}}{c.detail}")
        if c.fix and c.level != "ok":
            lines.append(f"{'':<6}fix: {c.fix}")
    failed = [c.name for c in checks if c.required and c.level == "FAIL"]
    warned = sum(c.level != "ok" for c in checks) - len(failed)
    if healthy:
        tail = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        lines.append(f"\ncorral is ready to run{tail}")
    else:
        lines.append(f"\ncorral cannot run: {', '.join(failed)} must be fixed first")
    return "\n".join(lines)


def _install_hint(package: str) -> str:
    if sys.platform == "darwin":
        return f"brew install {package}"
    return f"apt-get install {package} (or your system's package manager)"


def _run(argv: list[str]) -> tuple[int, str]:
    """Run a short command; (exit code, stdout+stderr). -1 when it cannot start or times out."""
    import subprocess

    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return -1, f"{argv[0]} did not answer within {_TIMEOUT_S:g} s"
    except OSError as exc:
        return -1, f"cannot run {argv[0]}: {exc.strerror or exc}"
    return done.returncode, (done.stdout + done.stderr).strip()


def _check_python() -> Check:
    version = ".".join(str(n) for n in sys.version_info[:3])
    if sys.version_info < (3, 11):  # noqa: UP036 -- a venv made by an older python still gets here
        return Check("python", "FAIL", f"{version} is too old", "install Python ≥ 3.11")
    return Check("python", "ok", f"{version} ({sys.executable})")


def _check_git() -> Check:
    path = shutil.which("git")
    fix = f"install git: {_install_hint('git')}"
    if path is None:
        return Check("git", "FAIL", "not found on PATH", fix)
    code, output = _run([path, "--version"])
    if code != 0:
        return Check("git", "FAIL", f"`git --version` failed: {output or f'exit {code}'}", fix)
    return Check("git", "ok", f"{output.removeprefix('git version ').strip()} ({path})")


def parse_tmux_version(text: str) -> tuple[int, int] | Literal["dev"] | None:
    """Read `tmux -V`: "tmux 3.3a" → (3, 3); "tmux next-3.5" → (3, 5); "tmux master" → "dev"; else None.

    A development build ("master", "openbsd-…" from OpenBSD's base system) is taken as new enough.
    """
    words = text.strip().split()
    if len(words) < 2 or words[0] != "tmux":
        return None
    raw = words[1]
    if raw == "master" or raw.startswith("openbsd-"):
        return "dev"
    raw = raw.removeprefix("next-")
    major, _, rest = raw.partition(".")
    minor = ""
    for char in rest:
        if not char.isdigit():
            break
        minor += char
    if not major.isdigit():
        return None
    return int(major), int(minor or 0)


def _check_tmux() -> Check:
    path = shutil.which("tmux")
    needed = ".".join(map(str, MIN_TMUX))
    fix = f"install tmux ≥ {needed}: {_install_hint('tmux')}"
    if path is None:
        return Check("tmux", "FAIL", "not found on PATH", fix)
    code, output = _run([path, "-V"])
    if code != 0:
        return Check("tmux", "FAIL", f"`tmux -V` failed: {output or f'exit {code}'}", fix)
    version = parse_tmux_version(output)
    if version is None:
        return Check("tmux", "warn", f"cannot read the version from {output!r}; corral needs ≥ {needed}", fix)
    if version == "dev":
        return Check("tmux", "ok", f"{output.removeprefix('tmux ')} (a development build) ({path})")
    if version < MIN_TMUX:
        return Check(
            "tmux", "FAIL", f"{output.removeprefix('tmux ')} is too old: corral needs ≥ {needed}", fix
        )
    return Check("tmux", "ok", f"{output.removeprefix('tmux ')} ({path})")


def _optional_tool(name: str, what: str, package: str) -> Callable[[], Check]:
    def check() -> Check:
        path = shutil.which(name)
        if path is not None:
            return Check(name, "ok", path, required=False)
        if name == "ionice" and sys.platform == "darwin":
            fix = "none on macOS (ionice is Linux-only); nothing to do"
        else:
            fix = f"install {package}: {_install_hint(package)}"
        detail = f"not found on PATH: agents' {what} will not be lowered (resource controls skipped)"
        return Check(name, "warn", detail, fix, required=False)

    return check


def _data_dir() -> Path:
    from actors.store import default_db_path

    return default_db_path().parent


def _check_data_dir() -> Check:
    fix_env = "or set CORRAL_HOME to a writable directory"
    try:
        directory = _data_dir()
    except Exception as exc:  # the store failing to import is itself what doctor must report
        return Check("data dir", "FAIL", f"cannot locate it: {type(exc).__name__}: {exc}", "reinstall corral")
    if directory.exists():
        if not directory.is_dir():
            return Check("data dir", "FAIL", f"{directory} is not a directory", f"remove it, {fix_env}")
        if not os.access(directory, os.W_OK | os.X_OK):
            return Check(
                "data dir", "FAIL", f"{directory} is not writable", f"chmod u+rwx {directory}, {fix_env}"
            )
        return Check("data dir", "ok", str(directory))
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check("data dir", "ok", f"{directory} (will be created)")
    return Check(
        "data dir",
        "FAIL",
        f"{directory} does not exist and {parent} is not writable",
        f"create it, {fix_env}",
    )


def _check_database() -> Check:
    try:
        from actors.store import Store, default_db_path
        from actors.store.db import recovery_hint

        path = default_db_path()
    except Exception as exc:
        return Check(
            "database", "FAIL", f"the store cannot be loaded: {type(exc).__name__}: {exc}", "reinstall corral"
        )
    fix = f"if it is damaged, empty or not corral's: {recovery_hint(path)}; if it is newer than this corral, "
    fix += "upgrade corral"
    from protocols.errors import CorralError

    try:
        with Store.open(path, check=True) as store:  # creates and migrates it, then PRAGMA quick_check
            schema = store.statistics().schema_version
    except CorralError as exc:
        return Check("database", "FAIL", str(exc), fix)
    except Exception as exc:
        return Check("database", "FAIL", f"{path} cannot be opened: {type(exc).__name__}: {exc}", fix)
    return Check("database", "ok", f"{path} (schema version {schema}, quick_check ok)")


_CHECKS: tuple[Callable[[], Check], ...] = (
    _check_python,
    _check_git,
    _check_tmux,
    _optional_tool("nice", "CPU priority (nice)", "coreutils"),
    _optional_tool("ionice", "I/O priority (ionice)", "util-linux"),
    _check_data_dir,
    _check_database,
)
