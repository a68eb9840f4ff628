"""What deleting a branch and its worktree would lose, and deleting the branch: the one place corral does.

    lost = work_at_risk(root, "corral/fix-login", wt_path)   # AtRisk(commits=(…), changes=(…))
    if not lost or force:
        remove_worktree(wt, force=force)                    # actors/git/worktrees.py
        delete_branch(root, "corral/fix-login")

Work is at risk when nothing else keeps it: a commit of the branch that no other branch, tag or remote branch
reaches (merged work, or work pushed or branched from, is safe whatever the branch's base was), and any change
`git status` shows in the worktree, untracked files included (ignored ones are build output, and go with the
worktree as `pause` lets them go). `corral instance delete` refuses at-risk work unless forced.

`created_by_corral` tells a branch corral made (it recorded the commit it started from, `branch.<name>.
corral-base`) from one it was given: only the first kind is corral's to delete.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from actors.git.names import check_branch_name
from actors.git.runner import git_answer, git_succeeds, run_git
from actors.git.worktrees import BASE_CONFIG_KEY

__all__ = ["AtRisk", "created_by_corral", "delete_branch", "work_at_risk"]

SHOWN = 5
"""How many commits and changed paths `AtRisk` names; the counts are whole."""


class AtRisk(msgspec.Struct, frozen=True, kw_only=True):
    """Work a deletion would lose: the branch's commits no other ref keeps (`abc1234 subject`, newest first)
    and the worktree's uncommitted changes (paths), the first `SHOWN` of each, with the full counts."""

    branch: str = ""
    commits: tuple[str, ...] = ()
    commit_count: int = 0
    worktree: str = ""
    changes: tuple[str, ...] = ()
    change_count: int = 0

    def __bool__(self) -> bool:
        return bool(self.commit_count or self.change_count)

    def describe(self) -> tuple[str, ...]:
        """One sentence per kind of loss, for a person: what, how many, the first few."""
        said = []
        if self.commit_count:
            more = f", and {self.commit_count - len(self.commits)} more" if self.commit_count > SHOWN else ""
            n = _count(self.commit_count, "commit")
            said.append(
                f"{n} on branch {self.branch} that no other branch, tag or remote branch has "
                f"({'; '.join(self.commits)}{more})"
            )
        if self.change_count:
            more = f", and {self.change_count - len(self.changes)} more" if self.change_count > SHOWN else ""
            n = _count(self.change_count, "uncommitted change")
            said.append(f"{n} in {self.worktree} ({', '.join(self.changes)}{more})")
        return tuple(said)


def work_at_risk(repo_root: str | os.PathLike[str], branch: str, worktree: str) -> AtRisk:
    """What deleting `branch` (when given and it exists) and removing `worktree` (when given and it exists)
    would lose."""
    root = Path(repo_root)
    commits: list[str] = []
    if branch and _branch_exists(root, branch):
        # The branch's commits, less everything any other ref reaches. A branch name has no glob characters
        # (git check-ref-format refuses them), so --exclude takes exactly this one.
        out = run_git(
            root,
            "log",
            "--format=%h %s",
            f"refs/heads/{branch}",
            "--not",
            f"--exclude={branch}",
            "--branches",
            "--tags",
            "--remotes",
        )
        commits = [line for line in out.splitlines() if line]
    changes: list[str] = []
    path = Path(worktree) if worktree else None
    if path is not None and (path / ".git").exists():
        out = run_git(
            path, "status", "--porcelain", "-z", "--untracked-files=all", "--ignore-submodules=none"
        )
        changes = _changed_paths(out)
    return AtRisk(
        branch=branch if commits else "",
        commits=tuple(commits[:SHOWN]),
        commit_count=len(commits),
        worktree=worktree if changes else "",
        changes=tuple(changes[:SHOWN]),
        change_count=len(changes),
    )


def created_by_corral(repo_root: str | os.PathLike[str], branch: str) -> bool:
    """True when corral made `branch` (it recorded the commit the branch started from)."""
    return git_answer(repo_root, "config", "--get", f"branch.{branch}.{BASE_CONFIG_KEY}") is not None


def delete_branch(repo_root: str | os.PathLike[str], branch: str) -> bool:
    """Delete the local branch (whatever it holds: check `work_at_risk` first); False when it was gone.
    git drops the branch's config section, the corral-base record with it."""
    root = Path(repo_root)
    check_branch_name(branch)  # never an option: a valid branch name does not begin with "-"
    if not _branch_exists(root, branch):
        return False
    run_git(root, "branch", "-D", branch)
    return True


def _branch_exists(root: Path, branch: str) -> bool:
    return git_succeeds(root, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def _changed_paths(porcelain_z: str) -> list[str]:
    """The paths of `git status --porcelain -z`: `XY path`, and a rename's old path as the next field."""
    paths = []
    fields = porcelain_z.split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":
            i += 1  # the old path of a rename or copy
    return paths


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"
