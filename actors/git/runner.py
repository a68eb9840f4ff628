"""Run git: one argv list, a timeout, and a `GitError` a person can read instead of a traceback.

    run_git(repo, "rev-parse", "HEAD")                      # → "3f2a…\n"
    run_git(repo, "worktree", "add", path, branch, timeout=SLOW_GIT_TIMEOUT_S)
    git_answer(repo, "config", "--get", key)                # → its stdout, or None when git says no
    with start_git(repo, "config", key, value) as record:   # runs alongside the caller's next command
        …; record.succeeded()

Every call is `git -C <repo> <args…>` with no shell, stdin closed, and a timeout (git is killed when it runs
out). The environment is the caller's, minus the variables that would point git at another repository
(`GIT_DIR`, `GIT_WORK_TREE`, … — set when corral is started from a git hook or from inside an agent's git
command), plus `GIT_TERMINAL_PROMPT=0` (a push that needs a password fails at once instead of waiting for a
terminal nobody watches) and `GIT_OPTIONAL_LOCKS=0` (corral's read-only `status`/`diff` never take the index
lock that an agent's own `git commit` in the same worktree is about to want).

    CorralError
    └── GitError                 git failed, timed out or is missing: the command, where, git's own message
        ├── BranchNameError      a branch name git would refuse (also a UsageError: exit 2)
        ├── WorktreeConflict     the branch is checked out elsewhere, the path is taken, the tree is dirty
        │                        or locked (also a ConflictError)
        └── NoRemoteError        push to a remote the repository does not have (also a NotFoundError)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from protocols.errors import ConflictError, CorralError, NotFoundError, UsageError

__all__ = [
    "GIT_TIMEOUT_S",
    "SLOW_GIT_TIMEOUT_S",
    "BackgroundGit",
    "BranchNameError",
    "GitError",
    "NoRemoteError",
    "WorktreeConflict",
    "git_answer",
    "git_env",
    "git_succeeds",
    "run_git",
    "start_git",
]

GIT_TIMEOUT_S = 30.0
"""The timeout of a git command that only reads or writes a little (rev-parse, status, commit)."""

SLOW_GIT_TIMEOUT_S = 300.0
"""The timeout of a command whose cost grows with the repository or the network: checkout, add -A, push."""

# Variables that would make git work on another repository than the one named by -C.
_REPO_LOCATING = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_MAX_STDERR = 2000


class GitError(CorralError):
    """A git command failed: the message names the command, the directory and what git said."""

    def __init__(
        self,
        message: str,
        *,
        argv: tuple[str, ...] = (),
        cwd: str = "",
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        self.argv, self.cwd, self.returncode, self.stderr = argv, cwd, returncode, stderr
        super().__init__(message)


class BranchNameError(GitError, UsageError):
    """A branch name git would refuse (`git check-ref-format --branch`)."""


class WorktreeConflict(GitError, ConflictError):
    """The worktree cannot be made or removed as asked: the branch is checked out elsewhere, the path holds
    something else, or the tree is dirty, locked or in the middle of a merge or rebase."""


class NoRemoteError(GitError, NotFoundError):
    """The repository has no remote of that name."""


def git_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment corral runs git in (see the module docstring)."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _REPO_LOCATING}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    return env


def run_git(repo: str | os.PathLike[str], *args: str, timeout: float = GIT_TIMEOUT_S) -> str:
    """Run `git -C repo args…` and return its stdout (undecodable bytes kept as surrogate escapes, so paths
    round-trip). Raises GitError when git exits non-zero, runs longer than `timeout` seconds (it is killed),
    or cannot be started."""
    done = _run(repo, args, timeout)
    if done.returncode != 0:
        stderr = _decode(done.stderr, "replace").strip()
        raise GitError(
            _failure(repo, args, f"exit {done.returncode}", stderr or "(git printed nothing)"),
            argv=args,
            cwd=str(repo),
            returncode=done.returncode,
            stderr=stderr,
        )
    return _decode(done.stdout, "surrogateescape")


def git_succeeds(repo: str | os.PathLike[str], *args: str, timeout: float = GIT_TIMEOUT_S) -> bool:
    """Whether `git -C repo args…` exits 0: for the questions git answers with its exit status
    (`rev-parse --verify --quiet`, `diff --quiet`). A timeout or a missing git still raises GitError."""
    return _run(repo, args, timeout).returncode == 0


def git_answer(repo: str | os.PathLike[str], *args: str, timeout: float = GIT_TIMEOUT_S) -> str | None:
    """The stdout of `git -C repo args…` when it exits 0, None when it exits otherwise: one call for the
    questions git answers with both (`config --get`, `show-ref`). A timeout or a missing git still raises."""
    done = _run(repo, args, timeout)
    return _decode(done.stdout, "surrogateescape") if done.returncode == 0 else None


class BackgroundGit:
    """A git command `start_git` left running while its caller does something else.

        with start_git(root, "config", key, value) as record:
            run_git(root, "worktree", "add", …)  # both run at once
            recorded = record.succeeded()

    Used as a context manager it is waited for on leaving the block however that happens, so no git
    outlives its caller's work.
    """

    def __init__(self, repo: str | os.PathLike[str], args: tuple[str, ...], timeout: float) -> None:
        self._repo, self._args, self._timeout = repo, args, timeout
        self._deadline = time.monotonic() + timeout
        try:
            self._proc = subprocess.Popen(
                ["git", "-C", os.fspath(repo), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=git_env(),
            )
        except OSError as exc:
            raise _not_started(repo, args, exc) from None

    def succeeded(self) -> bool:
        """Wait for git; whether it exited 0. Raises GitError when it ran longer than its timeout (counted
        from its start; it is killed)."""
        try:
            return self._proc.wait(max(0.0, self._deadline - time.monotonic())) == 0
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            how, detail = "timed out", f"no answer after {self._timeout:g}s; git was stopped"
            raise GitError(
                _failure(self._repo, self._args, how, detail), argv=self._args, cwd=str(self._repo)
            ) from None

    def __enter__(self) -> BackgroundGit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.succeeded()
        except GitError:
            if kind is None:  # else the caller's own error is the one to see
                raise


def start_git(repo: str | os.PathLike[str], *args: str, timeout: float = GIT_TIMEOUT_S) -> BackgroundGit:
    """Start `git -C repo args…` (the same environment, no shell, stdin closed) and return at once, for a
    command whose outcome is only its exit status and which can run alongside the caller's next one.
    Raises GitError when git cannot be started."""
    return BackgroundGit(repo, args, timeout)


def _run(
    repo: str | os.PathLike[str], args: tuple[str, ...], timeout: float
) -> subprocess.CompletedProcess[bytes]:
    argv = ["git", "-C", os.fspath(repo), *args]
    try:
        return subprocess.run(
            argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=git_env(), check=False
        )
    except subprocess.TimeoutExpired:
        raise GitError(
            _failure(repo, args, "timed out", f"no answer after {timeout:g}s; git was stopped"),
            argv=args,
            cwd=str(repo),
        ) from None
    except OSError as exc:  # git missing or not executable
        raise _not_started(repo, args, exc) from None


def _not_started(repo: str | os.PathLike[str], args: tuple[str, ...], exc: OSError) -> GitError:
    return GitError(
        f"cannot run git ({exc.strerror or exc}): install git and make sure it is on PATH",
        argv=args,
        cwd=str(repo),
    )


def _failure(repo: str | os.PathLike[str], args: tuple[str, ...], how: str, detail: str) -> str:
    if len(detail) > _MAX_STDERR:
        detail = "…" + detail[-_MAX_STDERR:]
    return f"git {shlex.join(args)} ({how}) in {Path(repo)}: {detail}"


def _decode(data: bytes, errors: str) -> str:
    return data.decode("utf-8", errors)
