"""The records of git worktrees, as frozen Structs: plain strings and numbers, so they are also JSON.

Worktree         an instance's worktree: repo_root, path, branch, base_commit, shared, existing_branch
WorktreeEntry    one line group of `git worktree list --porcelain`
PauseResult      what pausing did: the commit of uncommitted work, if any
DiffStats        files changed, insertions, deletions since the base commit
"""

from __future__ import annotations

import msgspec

__all__ = ["DiffStats", "PauseResult", "Worktree", "WorktreeEntry"]


class Worktree(msgspec.Struct, frozen=True, kw_only=True):
    """An instance's worktree: where it is, which branch it has, and the commit diffs are measured from.

    `shared` marks a task's worktree, used by several instances; `existing_branch` that corral did not
    create the branch (it was given, or came from a remote).
    """

    repo_root: str
    path: str
    branch: str
    base_commit: str
    shared: bool = False
    existing_branch: bool = False


class WorktreeEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of `git worktree list --porcelain`. `branch` is the short name, "" when detached or bare;
    `main` marks the main work tree (always the first); `prunable` one whose directory is gone."""

    path: str
    head: str = ""
    branch: str = ""
    main: bool = False
    bare: bool = False
    detached: bool = False
    locked: bool = False
    lock_reason: str = ""
    prunable: bool = False
    prune_reason: str = ""


class PauseResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a pause did: the commit it made of uncommitted work (None if there was none) and whether it
    removed the worktree (False when it had already gone)."""

    branch: str
    path: str
    commit: str | None = None
    removed: bool = False


class DiffStats(msgspec.Struct, frozen=True):
    """Lines changed since the base commit, committed or not; a binary file counts as changed with 0/0."""

    files_changed: int = 0
    insertions: int = 0
    deletions: int = 0
