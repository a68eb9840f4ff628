"""What an instance changed, as text: `git diff` of its worktree against its base commit, bounded in size.

    text = diff_text(wt.repo_root, wt.path, base=wt.base_commit, branch=wt.branch)
    text.stat        # git's --stat of it (" a.txt | 2 +-" …, and the summary line)
    text.diff        # the patch, without colours (a dashboard colours it), at most `limit` bytes
    text.truncated   # True when the patch was cut (at a line end) at `limit`

It is what a reviewer will see, as `diff_stats` counts it (actors/git/diffstat.py): the branch's commits since
the base plus the uncommitted work in the worktree — staged, unstaged and untracked (not ignored) files, an
untracked file shown as a new one. For a paused instance (its worktree removed, its work committed on its
branch) the branch's commits alone. Nothing is written: no index, no lock, no object (reading takes no
index lock, see runner.git_env), so an agent committing in the same worktree is never in the way.

A patch can be huge (an agent that committed a build directory): git's output is read up to `limit` bytes and
git is then stopped, so a diff never costs more memory than the limit, and the caller says it was cut.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import msgspec

from actors.git.diffstat import count_added_lines
from actors.git.runner import GIT_TIMEOUT_S, SLOW_GIT_TIMEOUT_S, GitError, git_env, run_git

__all__ = ["MAX_DIFF_BYTES", "MAX_UNTRACKED", "DiffText", "diff_text"]

MAX_DIFF_BYTES = 1 << 20
"""The patch shown at most (1 MiB): more than a person reads in a pane, little for the daemon to hold."""
MAX_UNTRACKED = 200
"""Untracked files shown as new ones at most; the rest are named in the stat only by their count."""

_DIFF = ("diff", "--find-renames", "--no-ext-diff", "--no-color", "--no-textconv")
_CHUNK = 1 << 16


class DiffText(msgspec.Struct, frozen=True, kw_only=True):
    stat: str
    diff: str
    truncated: bool = False
    diff_bytes: int = 0  # the size of the patch as shown (after a cut: the limit at most)


def diff_text(
    repo_root: str, path: str, *, base: str, branch: str = "", limit: int = MAX_DIFF_BYTES
) -> DiffText:
    """The diff of the worktree at `path` against `base` (see the module docstring); with `path` gone, of
    `branch` against `base` in `repo_root`. GitError when git cannot tell (an unknown base, a broken repo)."""
    where = Path(path) if path and Path(path).is_dir() else None
    if where is None:
        if not branch:
            raise GitError(f"cannot diff: the worktree {path or '(none)'} is gone and there is no branch")
        span = (base, f"refs/heads/{branch}")
        stat = run_git(repo_root, *_DIFF, "--stat=100", *span, timeout=SLOW_GIT_TIMEOUT_S)
        diff, cut = _bounded(Path(repo_root), (*_DIFF, *span), limit)
        return DiffText(stat=stat, diff=diff, truncated=cut, diff_bytes=len(diff.encode(errors="replace")))
    stat = run_git(where, *_DIFF, "--stat=100", base, timeout=SLOW_GIT_TIMEOUT_S)
    diff, cut = _bounded(where, (*_DIFF, base), limit)
    untracked = [
        n for n in run_git(where, "ls-files", "-z", "--others", "--exclude-standard").split("\0") if n
    ]
    lines = []
    for name in untracked[:MAX_UNTRACKED]:
        lines.append(f" {name} | {count_added_lines(where / name)} + (untracked)")
        if not cut:
            more, cut = _bounded(where, (*_DIFF, "--no-index", "--", os.devnull, name), limit - len(diff))
            diff += more
    if len(untracked) > MAX_UNTRACKED:
        lines.append(f" … and {len(untracked) - MAX_UNTRACKED} more untracked files")
    if lines:
        stat += "\n".join(lines) + "\n"
    return DiffText(stat=stat, diff=diff, truncated=cut, diff_bytes=len(diff.encode(errors="replace")))


def _bounded(cwd: Path, args: tuple[str, ...], limit: int) -> tuple[str, bool]:
    """git's stdout up to `limit` bytes (cut after the last whole line) and whether it was cut. `git diff
    --no-index` exits 1 when the files differ: 0 and 1 are both answers."""
    if limit <= 0:
        return "", True
    argv = ["git", "-C", os.fspath(cwd), *args]
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env()
        )
    except OSError as exc:
        raise GitError(
            f"cannot run git ({exc.strerror or exc}): install git and make sure it is on PATH"
        ) from None
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + GIT_TIMEOUT_S * 2
    out = bytearray()
    cut = False
    try:
        while chunk := proc.stdout.read1(_CHUNK):
            out += chunk
            if len(out) > limit:
                cut = True
                break
            if time.monotonic() > deadline:
                raise GitError(
                    f"git {' '.join(args[:2])} in {cwd} took over {GIT_TIMEOUT_S * 2:g} s; stopped"
                )
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.stderr.read() if not cut else b""
        code = proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    if not cut and code not in (0, 1):
        detail = stderr.decode(errors="replace").strip() or f"exit {code}"
        raise GitError(f"git {' '.join(args)} in {cwd}: {detail}", argv=args, cwd=str(cwd), returncode=code)
    if cut:
        out = out[:limit]
        out = out[: out.rfind(b"\n") + 1]
    return out.decode("utf-8", errors="replace"), cut
