"""How much an instance changed: `DiffStats` of its worktree against the commit its branch started from.

    diff_stats(wt)   # DiffStats(files_changed=4, insertions=120, deletions=7)

The count is what a reviewer will see: the branch's commits since `base_commit` plus the uncommitted work in
the worktree — staged, unstaged and untracked (not ignored) files — as `git diff --numstat <base>` run in the
worktree, plus the untracked files, counted the way git would count them once added. Renames are detected
(`--find-renames`, whatever the user's `diff.renames`), so a moved file is one file. A binary file counts as
one changed file with no lines. Reading never takes the index lock (see `runner.git_env`), so measuring
does not get in the way of an agent committing in the same worktree.
"""

from __future__ import annotations

from pathlib import Path

from actors.git.records import DiffStats, Worktree
from actors.git.runner import run_git

__all__ = ["count_added_lines", "diff_stats", "parse_numstat"]

_NUMSTAT = ("diff", "--numstat", "--find-renames", "--no-ext-diff", "--no-color")
_BINARY_SNIFF = 8000  # git's own heuristic: a NUL in the first 8000 bytes makes a file binary
_READ_CHUNK = 1 << 20


def diff_stats(wt: Worktree) -> DiffStats:
    """What the instance changed since `wt.base_commit`, committed or not. For a paused worktree (its
    directory is gone) the branch's commits alone."""
    path = Path(wt.path)
    if not path.is_dir():
        return parse_numstat(run_git(wt.repo_root, *_NUMSTAT, wt.base_commit, f"refs/heads/{wt.branch}"))
    stats = parse_numstat(run_git(path, *_NUMSTAT, wt.base_commit))
    untracked = run_git(path, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
    files, insertions = stats.files_changed, stats.insertions
    for name in filter(None, untracked):
        files += 1
        insertions += count_added_lines(path / name)
    return DiffStats(files, insertions, stats.deletions)


def parse_numstat(out: str) -> DiffStats:
    """Sum `git diff --numstat` lines (`added<TAB>deleted<TAB>path`; `-` for both in a binary file)."""
    files = insertions = deletions = 0
    for line in out.splitlines():
        added, _, rest = line.partition("\t")
        removed, _, _ = rest.partition("\t")
        files += 1
        insertions += int(added) if added.isdigit() else 0
        deletions += int(removed) if removed.isdigit() else 0
    return DiffStats(files, insertions, deletions)


def count_added_lines(file: Path) -> int:
    """Lines an untracked file adds, as `git diff --numstat` would count them: 0 for a binary file, 1 for a
    symlink (git stores its target), and a last line without a newline counts."""
    if file.is_symlink():
        return 1
    try:
        with open(file, "rb") as f:
            head = f.read(_READ_CHUNK)
            if b"\0" in head[:_BINARY_SNIFF]:
                return 0
            lines, last = head.count(b"\n"), head[-1:]
            while chunk := f.read(_READ_CHUNK):
                lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    except OSError:  # vanished or unreadable since ls-files: it still counts as a changed file
        return 0
    return lines + (1 if last and last != b"\n" else 0)
