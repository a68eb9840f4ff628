"""The simulated agent's side effects on its working directory: edit files, commit them, emit signals, run
commands. Every subprocess is an argv list with a timeout; nothing goes through a shell.

    ws = Workspace(Path.cwd(), task="fix-login")
    ws.append("sim/fix-login.txt", "turn 1: fix the form")   # → Edit(path, created=True)
    ws.commit("sim: fix the form")                           # git add + git commit of that file only
    ws.emit_signal("planner_finished")                       # corral signal emit planner_finished fix-login

The agent commits only the files it edited itself (`git commit -- <paths>`), so whatever else is staged or
changed in the worktree is left alone. Wave agents commit in one shared worktree at the same moment, and git
takes `index.lock` for every add and commit: a git command that finds a lock taken is tried again (up to
`LOCK_ATTEMPTS` times, 50-100 ms apart), as a person would run it again; other failures are reported at once.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["COMMAND_TIMEOUT_S", "LOCK_ATTEMPTS", "CommandResult", "Edit", "Workspace", "WorkspaceError"]

COMMAND_TIMEOUT_S = 60.0
"""How long any command the agent runs (git, corral, /run) may take before it is killed."""

LOCK_ATTEMPTS = 50
"""How many times a git add or commit is tried while another git process holds a lock in the repository."""

_LOCK_PAUSE_S = (0.05, 0.1)  # jittered, so that agents that collided once do not collide again in step
# "Unable to create '…/index.lock': File exists", and a ref another commit holds or has just moved.
_LOCKED = re.compile(r"\.lock'?: File exists|Unable to create '[^']*\.lock'|cannot lock ref")


class WorkspaceError(Exception):
    """An edit the agent refuses: a path outside its working directory, a file it cannot write."""


@dataclass(frozen=True, slots=True)
class Edit:
    """A line appended to `path` (relative to the workspace)."""

    path: str
    created: bool
    text: str


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command the agent ran: its argv, exit status and combined output (stripped)."""

    argv: tuple[str, ...]
    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def display(self) -> str:
        """The command as a person would type it."""
        return shlex.join(self.argv)


class Workspace:
    """A directory the agent works in: normally a git worktree that corral made for it."""

    def __init__(self, root: Path, *, task: str = "") -> None:
        self.root = root.resolve()
        self.task = task
        self._edited: list[str] = []
        self._identity: tuple[str, ...] | None = None

    @property
    def edited(self) -> tuple[str, ...]:
        """Files edited since the last commit."""
        return tuple(self._edited)

    def resolve(self, relative: str) -> Path:
        """The absolute path of `relative`; refuses absolute paths and paths that leave the workspace."""
        if not relative or os.path.isabs(relative):
            raise WorkspaceError(f"refusing to edit {relative!r}: give a path relative to {self.root}")
        path = (self.root / relative).resolve()
        if path != self.root and self.root not in path.parents:
            raise WorkspaceError(f"refusing to edit {relative!r}: it is outside {self.root}")
        return path

    def append(self, relative: str, text: str) -> Edit:
        """Append `text` as one line to `relative`, creating the file and its directories."""
        path = self.resolve(relative)
        created = not path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(text.rstrip("\n") + "\n")
        except OSError as exc:
            raise WorkspaceError(f"cannot write {relative}: {exc.strerror}") from None
        return Edit(self._edited_now(path), created, text)

    def write(self, relative: str, text: str) -> Edit:
        """Replace the contents of `relative` with `text` (ending in a newline), creating its directories."""
        path = self.resolve(relative)
        created = not path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
        except OSError as exc:
            raise WorkspaceError(f"cannot write {relative}: {exc.strerror}") from None
        return Edit(self._edited_now(path), created, text)

    def _edited_now(self, path: Path) -> str:
        shown = str(path.relative_to(self.root))
        if shown not in self._edited:
            self._edited.append(shown)
        return shown

    def commit(self, message: str) -> CommandResult:
        """`git add` and `git commit` the files edited since the last commit, and only those."""
        files = list(self._edited)
        if not files:
            return CommandResult(("git", "commit", "-m", message), 1, "nothing to commit")
        added = self._git_locked("add", "--", *files)
        if not added.ok:
            return added
        done = self._git_locked(*self._git_identity(), "commit", "-m", message, "--", *files)
        if done.ok:
            self._edited.clear()
            return CommandResult(("git", "commit", "-m", message), 0, done.output.splitlines()[0])
        return done

    def emit_signal(self, signal_type: str, payload: str = "", task: str = "") -> CommandResult:
        """Run `corral signal emit TYPE TASK [--payload PAYLOAD]`; the task defaults to this agent's."""
        task = task or self.task
        if not task:
            return CommandResult(
                ("corral", "signal", "emit", signal_type), 2, "no task: set $CORRAL_TASK or pass --task"
            )
        args = ["signal", "emit", signal_type, task] + (["--payload", payload] if payload else [])
        result = _run([*_corral(), *args], self.root)
        return CommandResult(("corral", *args), result.status, result.output)

    def run(self, command: str) -> CommandResult:
        """Run `command`, split as a shell would split it, without a shell."""
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            return CommandResult((command,), 2, f"cannot parse the command: {exc}")
        if not argv:
            return CommandResult((), 2, "no command given")
        return _run(argv, self.root)

    def first_attempt(self, key: str) -> bool:
        """True the first time `key` is asked about in this repository, False ever after.

        The memory is a file under the git directory (`.git/corral-sim/attempts/`, or the worktree's own
        git directory), so it survives the agent's exit and a fresh start, and never shows as a change in
        the worktree. Creating it is atomic: of two agents that ask at once, one is first.
        """
        marker = self._private_dir() / "attempts" / re.sub(r"[^A-Za-z0-9._-]", "_", key or "agent")
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            return False
        except OSError:
            return True  # nowhere to remember it: every attempt is a first one
        return True

    def attempted(self, key: str) -> bool:
        """True once `first_attempt(key)` was asked in this repository (asking here remembers nothing)."""
        marker = self._private_dir() / "attempts" / re.sub(r"[^A-Za-z0-9._-]", "_", key or "agent")
        return marker.exists()

    def _private_dir(self) -> Path:
        """`<git dir>/corral-sim`: the sim's own files in this repository; `.corral-sim/` outside git."""
        found = self._git("rev-parse", "--git-dir")
        if not found.ok or not found.output:
            return self.root / ".corral-sim"
        return (self.root / found.output.splitlines()[-1]).resolve() / "corral-sim"

    def _git(self, *args: str) -> CommandResult:
        return _run(["git", *args], self.root)

    def _git_locked(self, *args: str) -> CommandResult:
        """`git ARGS`, tried again while another git process holds a lock (see `LOCK_ATTEMPTS`)."""
        for _ in range(LOCK_ATTEMPTS - 1):
            result = self._git(*args)
            if result.ok or not _LOCKED.search(result.output):
                return result
            time.sleep(random.uniform(*_LOCK_PAUSE_S))
        return self._git(*args)

    def _git_identity(self) -> tuple[str, ...]:
        """`-c user.name=… -c user.email=…` when git has no identity here (a fresh machine, the demo)."""
        if self._identity is None:
            known = os.environ.get("GIT_AUTHOR_EMAIL") or self._git("config", "user.email").output
            self._identity = (
                () if known else ("-c", "user.name=corral-sim", "-c", "user.email=sim@corral.invalid")
            )
        return self._identity


def _corral() -> list[str]:
    """The `corral` installed next to this Python, else the one on PATH, else this source tree's."""
    beside = Path(sys.executable).with_name("corral")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("corral")
    return [found] if found else [sys.executable, "-m", "frontends.cli.main"]


def _run(argv: list[str], cwd: Path) -> CommandResult:
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return CommandResult(tuple(argv), 127, f"command not found: {argv[0]}")
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), 124, f"timed out after {COMMAND_TIMEOUT_S:.0f} s")
    output = (done.stdout + done.stderr).strip()
    return CommandResult(tuple(argv), done.returncode, output)
