"""`corral setup`: write `<repo>/.corral/config.toml`, with the agent program found on PATH as the default.

    PROGRAM     FOUND  PATH                       VERSION
    claude      yes    /home/me/.local/bin/claude 2.0.14 (Claude Code)
    codex       no     -                          -
    ...
    wrote /src/app/.corral/config.toml (default_program = "claude")

The file is `protocols.config.DEFAULT_CONFIG_TOML` (every key, commented) with `default_program` set to the
first of claude, codex, opencode, gemini, aider, amp found on PATH, else corral-sim. An existing file is
replaced only with --force, and is then kept as `config.toml.bak`. The files corral creates under `.corral/`
(logs, prompts, signal sentinels, the backup) are added to `.git/info/exclude`, never to a tracked
`.gitignore`; the config itself is meant to be committed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from frontends.cli.output import HelpFormatter, format_table, print_json
from protocols.errors import CorralError, UsageError

__all__ = ["DETECT_ORDER", "Detected", "detect_programs", "register", "render_config"]

DETECT_ORDER: tuple[str, ...] = ("claude", "codex", "opencode", "gemini", "aider", "amp")
"""Built-in harnesses, in the order their programs are preferred as `default_program`."""
FALLBACK = "sim"  # corral-sim: runs anywhere, so a fresh repository can try corral at once
VERSION_TIMEOUT_S = 2.0
# What corral writes under .corral/ and git should not see (relative to the repository root).
EXCLUDED = (
    ".corral/logs/",
    ".corral/prompts/",
    ".corral/plans/",
    ".corral/signals/",
    ".corral/config.toml.bak",
)
_DEFAULT_LINE = re.compile(r'^default_program = ".*"$', re.MULTILINE)


class Detected(msgspec.Struct, frozen=True):
    """One candidate program: where PATH has it ("" if not found) and what `--version` printed."""

    program: str
    found: bool
    path: str
    version: str


class SetupResult(msgspec.Struct, frozen=True):
    """What `corral setup --json` prints."""

    config: str
    default_program: str
    backup: str  # "" when no file was replaced
    excluded: tuple[str, ...]  # lines added to .git/info/exclude
    programs: tuple[Detected, ...]


def register(groups: Any, summary: str) -> None:
    parser = groups.add_parser(
        "setup",
        help=summary,
        description="Write .corral/config.toml in this repository: every key with its default, commented, "
        "and default_program set to the first agent program found on PATH (claude, codex, opencode, gemini, "
        "aider, amp; else corral-sim, the simulated agent). Prints what it found: PROGRAM FOUND PATH VERSION "
        "(each found program is asked for --version, 2 s at most). An existing config is kept unless --force "
        "is given; it is then saved as .corral/config.toml.bak. The files corral creates under .corral/ "
        "(logs/, prompts/, signals/, the backup) are added to .git/info/exclude.",
        epilog="examples:\n  corral setup\n  corral setup --force\n"
        "  corral setup --json | jq .default_program",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--force", action="store_true", help="replace an existing config (kept as .bak)")
    parser.add_argument("--json", action="store_true", help="print what was detected and written as JSON")
    parser.set_defaults(handler=_setup)


def _setup(args: argparse.Namespace) -> int:
    from frontends.project import find_project_root
    from protocols.config import CONFIG_PATH

    root = find_project_root()
    target = root / CONFIG_PATH
    if target.exists() and not args.force:
        raise UsageError(
            f"{target} already exists; to replace it (the current one is kept as "
            f"{target.name}.bak), run: corral setup --force"
        )
    programs = detect_programs()
    chosen = next((d.program for d in programs if d.found and d.program != _program(FALLBACK)), "")
    chosen = chosen or _program(FALLBACK)
    text = render_config(chosen)
    backup = _write(target, text)
    excluded = _exclude(root)
    if args.json:
        print_json(SetupResult(str(target), chosen, str(backup or ""), excluded, tuple(programs)))
        return 0
    rows = [(d.program, "yes" if d.found else "no", d.path or "-", d.version or "-") for d in programs]
    print(format_table(("PROGRAM", "FOUND", "PATH", "VERSION"), rows))
    print()
    if backup is not None:
        print(f"kept the previous config as {backup}")
    print(f'wrote {target} (default_program = "{chosen}")')
    if chosen == _program(FALLBACK):
        print(
            "no agent program found on PATH: corral-sim (the simulated agent) is the default "
            "until you set one"
        )
    if excluded:
        print(f"added to .git/info/exclude: {' '.join(excluded)}")
    return 0


def _program(harness: str) -> str:
    from protocols.harness import BUILTIN_HARNESSES

    return BUILTIN_HARNESSES[harness].program


def detect_programs(path: str | None = None) -> list[Detected]:
    """Each candidate program (corral-sim last) looked up on `path` (default: $PATH), versions asked for in
    parallel, so that the whole detection takes at most VERSION_TIMEOUT_S."""
    search = os.environ.get("PATH", os.defpath) if path is None else path
    programs = [_program(name) for name in (*DETECT_ORDER, FALLBACK)]
    found = {p: shutil.which(p, path=search) or "" for p in programs}
    with ThreadPoolExecutor(max_workers=len(programs)) as pool:
        versions = dict(zip(programs, pool.map(lambda p: _version(found[p]), programs), strict=True))
    return [Detected(p, bool(found[p]), found[p], versions[p]) for p in programs]


def _version(executable: str) -> str:
    """The first line `executable --version` prints, or "" (not found, failed, silent or too slow)."""
    if not executable:
        return ""
    try:
        done = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=VERSION_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (subprocess.TimeoutExpired, OSError):
        return ""
    if done.returncode != 0:
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip()[:60] if lines else ""


def render_config(program: str) -> str:
    """DEFAULT_CONFIG_TOML with `default_program = "<program>"`; checked to parse before it is returned."""
    import json

    from protocols.config import DEFAULT_CONFIG_TOML, parse_config

    text, count = _DEFAULT_LINE.subn(f"default_program = {json.dumps(program)}", DEFAULT_CONFIG_TOML, count=1)
    if count != 1:
        raise CorralError("the default config has no default_program line: this is a bug in corral")
    parse_config(text, "the generated .corral/config.toml")
    return text


def _write(target: Path, text: str) -> Path | None:
    """Write `target` atomically; an existing file is first copied to `<name>.bak` (returned)."""
    backup = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            backup = target.with_name(target.name + ".bak")
            shutil.copy2(target, backup)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        raise CorralError(f"cannot write {target}: {exc.strerror or exc}") from None
    return backup


def _exclude(root: Path) -> tuple[str, ...]:
    """Add the EXCLUDED paths git does not already ignore to `<git-common-dir>/info/exclude`; the ones added.

    A repository whose git directory cannot be found, or whose exclude file cannot be written, is left as
    it is: ignoring those files is a convenience, not a requirement.
    """
    git = shutil.which("git")
    if git is None:
        return ()
    try:
        common = _git(git, root, "rev-parse", "--git-common-dir").strip()
        ignored = _git(git, root, "check-ignore", "--no-index", "--", *EXCLUDED, ok=(0, 1)).splitlines()
    except (OSError, subprocess.SubprocessError):
        return ()
    missing = tuple(p for p in EXCLUDED if p not in {line.strip() for line in ignored})
    if not common or not missing:
        return ()
    exclude = (root / common) / "info" / "exclude"
    try:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text(encoding="utf-8", errors="surrogateescape") if exclude.exists() else ""
        sep = "" if not text or text.endswith("\n") else "\n"
        with open(exclude, "a", encoding="utf-8", errors="surrogateescape") as f:
            f.write(
                sep + "# corral: files corral creates under .corral/\n" + "".join(p + "\n" for p in missing)
            )
    except OSError:
        return ()
    return missing


def _git(git: str, root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(
        [git, "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode not in ok:
        raise subprocess.SubprocessError(done.stderr.strip())
    return done.stdout
