"""actors.project_inbox: the view of one instance, from the Project's entry and the Instance's info."""

from __future__ import annotations

from actors.instance import InstanceInfo
from actors.project_inbox import InstanceEntry, instance_view

ENTRY = InstanceEntry(
    project="app",
    title="fix-login",
    path="root/project:app/fix-login",
    program="claude",
    mode="tmux",
    branch="corral/fix-login",
    worktree="/src/app/.worktrees/corral-fix-login",
    task="",
    agent_type="coder",
    session="corral_app_fix-login",
    created_at=1.0,
)


def test_the_view_joins_the_entry_and_the_live_info_with_the_age_of_the_status() -> None:
    info = InstanceInfo(
        project="app",
        title="fix-login",
        status="waiting",
        reason="permission prompt: edit a.txt?",
        since=100.0,
        mode="tmux",
        restarts=1,
        resource_profile="normal",
    )
    view = instance_view(ENTRY, info, now=112.5)
    assert (view.status, view.reason, view.status_age_s, view.restarts) == (
        "waiting",
        "permission prompt: edit a.txt?",
        12.5,
        1,
    )
    assert (view.branch, view.program, view.session) == ("corral/fix-login", "claude", "corral_app_fix-login")


def test_without_info_the_view_is_unknown_with_the_reason_why() -> None:
    view = instance_view(ENTRY, None, now=0.0, why="the instance did not answer within 5 s")
    assert (view.status, view.reason, view.status_age_s) == (
        "unknown",
        "the instance did not answer within 5 s",
        None,
    )
