"""protocols.titles: which titles are refused, and which instance a partial title names."""

from __future__ import annotations

import pytest

from protocols.errors import UsageError
from protocols.titles import AmbiguousTitle, check_title, match_title

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


@pytest.mark.parametrize(
    "title", ["", "  ", " padded", "a/b", "tab\there", "nul\x00", "-x", ".", "..", "x" * 101]
)
def test_titles_that_cannot_name_an_instance_are_refused_with_the_reason(title: str) -> None:
    with pytest.raises(UsageError):
        check_title(title)


@pytest.mark.parametrize("title", ["fix the login ✓", "x@{1}", "{a}", "50%", "why?", "#3", "a.b", "..."])
def test_titles_with_spaces_unicode_braces_or_url_characters_are_accepted(title: str) -> None:
    assert check_title(title) == title


def test_an_ambiguous_title_names_every_match_and_is_a_usage_error() -> None:
    error = AmbiguousTitle("app", "fix", ["fix-login", "fix-logout"])
    assert error.exit_code == 2 and error.matches == ("fix-login", "fix-logout")
    assert (
        str(error)
        == '"fix" matches 2 instances of project app: fix-login, fix-logout; give more of the title'
    )
