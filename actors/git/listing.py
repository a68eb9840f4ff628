"""Read `git worktree list --porcelain` into `WorktreeEntry` records.

    list_worktrees(root)[0]   # WorktreeEntry(path="/src/app", head="3f2a…", branch="main", main=True, …)

The porcelain format is one block of `key value` lines per worktree, blocks separated by an empty line; keys
that carry no value (`bare`, `detached`) and keys this version of corral does not know are tolerated, so a
newer git adding one does not break the parse. (`-z`, which would survive a newline in a path, needs git
2.36; Ubuntu 22.04 ships 2.34.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from actors.git.records import WorktreeEntry
from actors.git.runner import run_git

__all__ = ["list_worktrees", "parse_worktree_list"]


def list_worktrees(repo_root: str | os.PathLike[str]) -> tuple[WorktreeEntry, ...]:
    """Every worktree of the repository, the main work tree first."""
    return parse_worktree_list(run_git(repo_root, "worktree", "list", "--porcelain"))


def parse_worktree_list(porcelain: str) -> tuple[WorktreeEntry, ...]:
    """The entries of a `git worktree list --porcelain` output; the first is the main work tree."""
    return tuple(_parse_entry(block, i == 0) for i, block in enumerate(_blocks(porcelain)))


def _blocks(out: str) -> Iterator[list[str]]:
    block: list[str] = []
    for line in out.splitlines():
        if line:
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def _parse_entry(lines: list[str], main: bool) -> WorktreeEntry:
    path = head = branch = lock_reason = prune_reason = ""
    bare = detached = locked = prunable = False
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "worktree":
            path = value
        elif key == "HEAD":
            head = value
        elif key == "branch":
            branch = value.removeprefix("refs/heads/")
        elif key == "bare":
            bare = True
        elif key == "detached":
            detached = True
        elif key == "locked":
            locked, lock_reason = True, value
        elif key == "prunable":
            prunable, prune_reason = True, value
    return WorktreeEntry(
        path=path,
        head=head,
        branch=branch,
        main=main,
        bare=bare,
        detached=detached,
        locked=locked,
        lock_reason=lock_reason,
        prunable=prunable,
        prune_reason=prune_reason,
    )
