"""actors/instance_removal.py and actors/git/discard.py: what deleting an ended instance removes, keeps and
would lose — a pure decision, and git's answer in a real repository."""

from __future__ import annotations

from pathlib import Path

from actors.git import create_worktree, created_by_corral, delete_branch, work_at_risk
from actors.instance_removal import Removal, plan_removal, remove
from protocols.records import InstanceRecord
from tests.conftest import git


def _row(title: str, mode: str = "own", branch: str = "", path: str = "", task: str = "") -> InstanceRecord:
    branch = branch or f"corral/{title}"
    return InstanceRecord(
        project="app",
        title=title,
        program="claude",
        mode="tmux",
        task=task,
        branch=branch if mode != "none" else "",
        worktree_mode=mode,
        worktree_path=(path or f"/src/app/.worktrees/{title}") if mode != "none" else "",
        status="exited",
        created_at="2026-01-01T00:00:00.000000Z",
    )


def test_an_own_worktree_and_a_branch_corral_made_go_with_the_instance() -> None:
    row = _row("fix")
    assert plan_removal(row, [_row("other")], corral_made=True) == Removal(
        worktree="/src/app/.worktrees/fix", branch="corral/fix"
    )


def test_a_tasks_shared_worktree_is_never_removed_for_one_of_its_agents() -> None:
    row = _row("login-coder", mode="shared", branch="corral/login", task="login")
    plan = plan_removal(row, [], corral_made=True)
    assert (plan.worktree, plan.branch) == ("", "")
    assert plan.kept == ("the worktree and branch corral/login of task login, shared by its agents",)


def test_a_worktree_another_instance_uses_stays_for_it() -> None:
    mine = _row("a", mode="branch", branch="release", path="/w/release")
    theirs = _row("b", mode="branch", branch="release", path="/w/release")
    plan = plan_removal(mine, [mine, theirs], corral_made=True)
    assert (plan.worktree, plan.branch) == ("", "")
    assert plan.kept == ("the worktree and branch release: instance b uses them too",)


def test_a_branch_corral_did_not_create_is_kept_and_said_so() -> None:
    plan = plan_removal(_row("hot", mode="branch", branch="hotfix"), [], corral_made=False)
    assert (plan.branch, plan.kept) == ("", ("branch hotfix: corral did not create it",))
    assert plan.worktree


def test_an_instance_without_a_worktree_removes_only_its_row() -> None:
    assert plan_removal(_row("adopted", mode="none"), [], corral_made=True) == Removal()


def test_work_at_risk_is_what_no_other_ref_keeps(git_repo: Path) -> None:
    wt = create_worktree(git_repo, "fix")
    path = Path(wt.path)
    assert created_by_corral(git_repo, wt.branch)
    assert not work_at_risk(git_repo, wt.branch, wt.path)  # nothing done yet

    (path / "a.txt").write_text("a\n")
    git(path, "add", "a.txt")
    git(path, "commit", "-qm", "add a")
    (path / "README.md").rename(path / "READ.md")
    git(path, "add", "-A")
    (path / "new.txt").write_text("n\n")
    lost = work_at_risk(git_repo, wt.branch, wt.path)
    assert lost.commit_count == 1 and lost.commits[0].endswith(" add a")
    assert lost.changes == ("READ.md", "new.txt") and lost.change_count == 2
    said = lost.describe()
    assert said[0].startswith("1 commit on branch corral/fix that no other branch, tag or remote branch has")
    assert said[1] == f"2 uncommitted changes in {wt.path} (READ.md, new.txt)"

    git(git_repo, "branch", "keeper", wt.branch)  # another branch keeps the commit
    assert work_at_risk(git_repo, wt.branch, "").commit_count == 0


def test_remove_takes_the_worktree_then_the_branch_and_skips_what_is_gone(git_repo: Path) -> None:
    wt = create_worktree(git_repo, "gone")
    plan = Removal(worktree=wt.path, branch=wt.branch)
    Path(wt.path, "junk.txt").write_text("x\n")
    remove(plan, str(git_repo), force=True)
    assert not Path(wt.path).exists()
    assert wt.branch not in git(git_repo, "branch", "--list")
    assert not created_by_corral(git_repo, wt.branch)  # its corral-base record went with it
    remove(plan, str(git_repo), force=False)  # again: nothing left to do, no error
    assert delete_branch(git_repo, wt.branch) is False
