"""actors.project: which instance a partial title names, which titles are refused, and the view of one."""

from __future__ import annotations

import pytest

from actors.instance import InstanceInfo
from actors.project import AmbiguousTitle, check_title, match_title
from actors.project_inbox import InstanceEntry, instance_view
from protocols.errors import UsageError

TITLES = ["fix-login", "fix-logout", "review-1", "Docs"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("fix-login", ["fix-login"]),  # exact, though it also begins no other
        ("fix-logo", ["fix-logout"]),  # the one title it begins
        ("fix-log", ["fix-login", "fix-logout"]),  # several: ambiguous
        ("view", ["review-1"]),  # no prefix matches: the one title containing it
        ("docs", ["Docs"]),  # case-blind past the exact step
        ("gin", ["fix-login"]),
        ("nothing", []),
    ],
)
def test_a_title_is_exact_then_a_unique_prefix_then_a_unique_substring(
    query: str, expected: list[str]
) -> None:
    assert match_title(query, TITLES) == expected


def test_an_exact_title_wins_over_the_longer_titles_it_begins() -> None:
    assert match_title("fix", ["fix", "fix-login"]) == ["fix"]


def test_a_prefix_match_hides_substring_matches() -> None:
    assert match_title("log", ["login-page", "fix-logout"]) == ["login-page"]


@pytest.mark.parametrize("title", ["", "  ", " padded", "a/b", "tab\there", "-x", "x" * 101])
def test_titles_that_cannot_name_an_instance_are_refused_with_the_reason(title: str) -> None:
    with pytest.raises(UsageError):
        check_title(title)


def test_a_plain_title_with_spaces_or_unicode_is_accepted() -> None:
    assert check_title("fix the login ✓") == "fix the login ✓"


def test_an_ambiguous_title_names_every_match_and_is_a_usage_error() -> None:
    error = AmbiguousTitle("app", "fix", ["fix-login", "fix-logout"])
    assert error.exit_code == 2 and error.matches == ("fix-login", "fix-logout")
    assert (
        str(error)
        == '"fix" matches 2 instances of project app: fix-login, fix-logout; give more of the title'
    )


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
