"""Deleting an ended instance: what goes with its row (its worktree, its branch), what stays and why.

    plan = plan_removal(record, others, corral_made=created_by_corral(root, record.branch))
    lost = work_at_risk(root, plan.branch, plan.worktree)       # refuse unless forced
    remove(plan, root, force=True)

The decision is pure (`plan_removal`); the Project carries it out on its thread. An instance's worktree and
branch go with it only when they are its own: a task's shared worktree belongs to the task and its other
agents; a worktree or branch another instance of the project also uses stays for that one; a branch corral
did not create (`--branch` given by a person, or one from a remote) is the person's. What stays is said, so
nothing is left behind silently.

Order, for a daemon killed at any line: the worktree, then the branch, then the row. Until the row goes the
instance is listed, and deleting it again finishes the job (a worktree or branch already gone is skipped);
the row never goes first, which would leave a worktree and branch nothing lists.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from actors.git import Worktree, delete_branch, remove_worktree
from protocols.records import InstanceRecord

__all__ = ["Removal", "plan_removal", "remove"]


class Removal(msgspec.Struct, frozen=True, kw_only=True):
    """The worktree to remove and the branch to delete ("" none), and what is kept, with why."""

    worktree: str = ""
    branch: str = ""
    kept: tuple[str, ...] = ()


def plan_removal(record: InstanceRecord, others: Iterable[InstanceRecord], *, corral_made: bool) -> Removal:
    """What deleting the instance of `record` removes besides its row. `others`: the project's other
    instances; `corral_made`: corral created the record's branch."""
    mode, path, branch = record.worktree_mode, record.worktree_path, record.branch
    if mode in ("", "none") or not (path or branch):
        return Removal()
    if mode == "shared":
        task = record.task
        return Removal(kept=(f"the worktree and branch {branch} of task {task}, shared by its agents",))
    users = sorted(
        o.title
        for o in others
        if o.title != record.title
        and o.worktree_mode not in ("", "none")
        and ((path and o.worktree_path == path) or (branch and o.branch == branch))
    )
    if users:
        who = ", ".join(users)
        return Removal(kept=(f"the worktree and branch {branch}: instance {who} uses them too",))
    if not corral_made:
        return Removal(worktree=path, kept=(f"branch {branch}: corral did not create it",))
    return Removal(worktree=path, branch=branch)


def remove(plan: Removal, repo_root: str, *, force: bool) -> None:
    """Remove the planned worktree, then delete the planned branch; what is already gone is skipped.
    `force` discards uncommitted changes (the caller checked what would be lost)."""
    if plan.worktree:  # also when its directory is gone: git must forget it before the branch can go
        remove_worktree(
            Worktree(repo_root=repo_root, path=plan.worktree, branch=plan.branch, base_commit=""), force=force
        )
    if plan.branch:
        delete_branch(repo_root, plan.branch)
