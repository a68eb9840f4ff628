"""Branch and worktree directory names: every title gives a branch git itself accepts, every branch its own
directory. git is the oracle (`git check-ref-format --branch`), run on the names hypothesis invents."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from actors.git import BranchNameError, branch_for, check_branch_name, is_valid_branch_name, slug
from actors.git.names import MAX_NAME_CHARS
from protocols.errors import CorralError, UsageError

# Text git can receive in argv: no NUL, no lone surrogates.
titles = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=120)
prefixes = st.sampled_from(["corral/", "", "me/", "team.a/wip-", "x_"])
# Names built from the characters git's rules are about, so both answers come up often.
_PIECES = [*"ab/.-@{}~^:?*[\\ \t\x7fé", ".lock", "..", "HEAD"]
tricky = st.lists(st.sampled_from(_PIECES), max_size=10).map("".join)
# Valid branch names that differ in the ways a directory name might lose: case, '/', non-ASCII.
branches = st.text(st.sampled_from("aAbZ01/._-é+"), min_size=1, max_size=12).filter(is_valid_branch_name)
GIT_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def outside_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("not-a-repo")


def git_accepts(name: str, cwd: Path) -> bool:
    """`git check-ref-format --branch` accepts `name` and means that very branch (no @{-1} expansion)."""
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", name],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "GIT_CEILING_DIRECTORIES": str(cwd.parent)},
    )
    return done.returncode == 0 and done.stdout.rstrip("\n") == name


@pytest.mark.parametrize(
    ("title", "branch"),
    [
        ("Fix the login page!", "corral/fix-the-login-page"),
        ("  spaces   everywhere  ", "corral/spaces-everywhere"),
        ("feat/login", "corral/feat-login"),
        ("a..b", "corral/a.b"),
        ("...hidden", "corral/hidden"),
        ("release v1.2.", "corral/release-v1.2"),
        ("deps.lock", "corral/deps-lock"),
        ("deps.lock.", "corral/deps-lock"),
        ("HEAD", "corral/head"),
        ("@{-1}", "corral/1"),
        ("ref@{upstream}", "corral/ref-upstream"),
        ("~^:?*[\\", "corral/untitled"),
        ("", "corral/untitled"),
        ("Übersicht: Ärger", "corral/übersicht-ärger"),
        ("ｆｕｌｌｗｉｄｔｈ／ｓｌａｓｈ", "corral/fullwidth-slash"),
        ("修复 登录", "corral/修复-登录"),
        ("tab\tand\nnewline", "corral/tab-and-newline"),
    ],
)
def test_branch_for_makes_the_title_a_safe_branch(title: str, branch: str, outside_repo: Path) -> None:
    assert branch_for(title) == branch
    assert git_accepts(branch, outside_repo)


def test_branch_for_uses_the_prefix_as_given() -> None:
    assert branch_for("Fix login", prefix="me/") == "me/fix-login"
    assert branch_for("Fix login", prefix="") == "fix-login"


def test_branch_for_cuts_a_long_title_and_never_ends_in_lock() -> None:
    long = "x" * (MAX_NAME_CHARS - 5) + ".lock" + "y" * 50
    name = branch_for(long, prefix="")
    assert len(name) == MAX_NAME_CHARS
    assert name.endswith("-lock")


@pytest.mark.parametrize("prefix", ["bad prefix/", "../", "/abs/", "-dash/", "a..b/", "x.lock/", "we@{ird/"])
def test_an_invalid_prefix_is_a_usage_error_naming_it(prefix: str) -> None:
    with pytest.raises(BranchNameError) as caught:
        branch_for("Fix login", prefix=prefix)
    message = str(caught.value)
    assert repr(prefix) in message and "not a valid git branch name" in message
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2


@given(title=titles, prefix=prefixes)
@GIT_SETTINGS
@example(title="a" * 59 + ".lock", prefix="corral/")
@example(title="İstanbul", prefix="corral/")
@example(title="\u0301combining first", prefix="")
def test_any_title_gives_a_branch_git_accepts(title: str, prefix: str, outside_repo: Path) -> None:
    branch = branch_for(title, prefix)
    assert branch == branch_for(title, prefix)  # deterministic
    assert branch.startswith(prefix)
    assert len(branch) <= len(prefix) + MAX_NAME_CHARS
    assert len(branch.encode()) - len(prefix.encode()) <= 255  # one file name under refs/heads/<prefix>
    assert is_valid_branch_name(branch)
    assert git_accepts(branch, outside_repo)


@given(name=tricky)
@GIT_SETTINGS
@example(name="@")
@example(name="a/.b")
@example(name="a.lock/b")
def test_is_valid_branch_name_agrees_with_git(name: str, outside_repo: Path) -> None:
    ours = is_valid_branch_name(name)
    if name == "@":  # git accepts it; corral refuses it, as most git commands read it as HEAD
        assert not ours
        return
    assert ours == git_accepts(name, outside_repo)


def test_check_branch_name_says_which_rule_is_broken() -> None:
    assert check_branch_name("corral/ok") == "corral/ok"
    for name, rule in [
        ("", "empty"),
        ("-x", "begins with '-'"),
        ("a b", "' '"),
        ("a..b", "'..'"),
        ("a//b", "empty path component"),
        ("a/.b", "begins with '.'"),
        ("a.lock", "ends with '.lock'"),
        ("a.", "ends with '.'"),
    ]:
        with pytest.raises(BranchNameError, match=re.escape(rule)) as caught:
            check_branch_name(name)
        assert isinstance(caught.value, CorralError)
        assert "Traceback" not in str(caught.value)


SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")


@pytest.mark.parametrize(
    ("branch", "directory"),
    [
        ("fix-login", "fix-login"),
        ("v1.2", "v1.2"),
        ("corral/fix-login", "corral-fix-login-9dae716e"),
        ("Fix-Login", "fix-login-"),
        ("übersicht", "bersicht-"),
        ("修复", "branch-"),
    ],
)
def test_slug_keeps_a_plain_name_and_hashes_any_other(branch: str, directory: str) -> None:
    made = slug(branch)
    if directory.endswith("-"):
        assert re.fullmatch(re.escape(directory) + r"[0-9a-f]{8}", made)
    else:
        assert made == directory


@given(branch=titles.map(lambda t: branch_for(t, "corral/")) | branches)
@settings(max_examples=300)
def test_slug_is_a_safe_directory_name(branch: str) -> None:
    made = slug(branch)
    assert SLUG.fullmatch(made), made
    assert made not in (".", "..")
    assert len(made) <= MAX_NAME_CHARS + 9
    assert made == slug(branch)


@given(a=branches, b=branches)
@settings(max_examples=300)
@example(a="corral/fix-login", b="corral-fix-login")
@example(a="Fix", b="fix")
@example(a="a/b", b="a-b")
def test_two_branches_never_share_a_directory_even_ignoring_case(a: str, b: str) -> None:
    assume(a != b)
    assert slug(a).lower() != slug(b).lower()
