"""`corral task register / update-content / delete` as a real process in a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.cli_kit import CORRAL, clean_env, corral, fails, ok

PLAN = """\
# Fix the login form

**Goal:** users can log in again

## Wave 1: Repair
### Task 1: Validate the form
Check empty input.
### Task 2: Fix the handler
Return 401, not 500.
"""

# Line 4 tries to be a task heading but has no number.
MALFORMED = """\
# Fix the login form

## Wave 1: Repair
### Task two: Validate the form
"""


@pytest.fixture
def repo(corral_home: Path, git_repo: Path) -> Path:
    return git_repo


def show(repo: Path, name: str) -> dict[str, object]:
    return json.loads(ok(repo, "task", "show", name, "--json"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- register ---------------------------------------------------------------------------------------


def test_register_names_the_task_after_the_file_and_titles_it_from_the_plan(
    repo: Path, tmp_path: Path
) -> None:
    plan = write(tmp_path / "plans" / "fix-login.md", PLAN)
    assert ok(repo, "task", "register", str(plan)) == "registered: fix-login → ready\n"
    task = show(repo, "fix-login")
    assert (task["title"], task["content"], task["branch"], task["status"]) == (
        "Fix the login form",
        PLAN,
        "corral/fix-login",
        "ready",
    )


def test_register_makes_a_slug_of_the_file_name(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "Fix Login (v2).md", PLAN)
    assert ok(repo, "task", "register", str(plan)) == "registered: fix-login-v2 → ready\n"


def test_register_takes_name_topic_and_branch_from_flags(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "draft.md", PLAN)
    out = ok(repo, "task", "register", str(plan), "--name", "add-sso", "--topic", "auth", "--branch", "b/sso")
    assert out == "registered: add-sso → ready\n"
    task = show(repo, "add-sso")
    assert (task["topic"], task["branch"]) == ("auth", "b/sso")


def test_register_shows_the_plan_in_task_show(repo: Path, tmp_path: Path) -> None:
    ok(repo, "task", "register", str(write(tmp_path / "fix-login.md", PLAN)))
    out = ok(repo, "task", "show", "fix-login")
    assert "title:        Fix the login form" in out
    assert out.endswith("### Task 2: Fix the handler\nReturn 401, not 500.\n")


def test_register_a_malformed_plan_warns_naming_the_line_and_registers_it(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "fix-login.md", MALFORMED)
    result = corral(repo, "task", "register", str(plan))
    assert result.returncode == 0
    assert result.stdout == "registered: fix-login → ready\n"
    assert result.stderr.startswith(
        f'corral: warning: {plan}:4: "### Task two: Validate the form" needs a task'
    )
    assert f"corral task update-content fix-login --file {plan}" in result.stderr
    assert show(repo, "fix-login")["content"] == MALFORMED


def test_register_a_missing_file_is_a_usage_error_naming_it(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.md"
    assert (
        fails(repo, 2, "task", "register", str(missing))
        == f"cannot read {missing}: No such file or directory"
    )


def test_register_an_existing_name_fails_without_a_warning(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "fix-login.md", MALFORMED)
    ok(repo, "task", "create", "fix-login")
    result = corral(repo, "task", "register", str(plan))
    assert result.returncode == 1
    assert "warning" not in result.stderr
    assert 'a task named "fix-login" already exists' in result.stderr


def test_register_a_file_name_without_a_usable_name_asks_for_name(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "___.md", PLAN)
    assert "give one with --name NAME" in fails(repo, 2, "task", "register", str(plan))


# --- update-content ---------------------------------------------------------------------------------


def test_update_content_from_a_file_replaces_the_content(repo: Path, tmp_path: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--content", "old brief")
    plan = write(tmp_path / "new.md", PLAN)
    assert (
        ok(repo, "task", "update-content", "fix-login", "--file", str(plan))
        == "updated: fix-login (9 lines)\n"
    )
    assert show(repo, "fix-login")["content"] == PLAN
    assert ok(repo, "task", "show", "fix-login").endswith("Return 401, not 500.\n")


def test_update_content_reads_stdin_without_file(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    assert ok(repo, "task", "update-content", "fix-login", stdin=PLAN) == "updated: fix-login (9 lines)\n"
    assert show(repo, "fix-login")["content"] == PLAN


def test_update_content_with_a_malformed_plan_warns_naming_the_line(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    result = corral(repo, "task", "update-content", "fix-login", stdin=MALFORMED)
    assert result.returncode == 0
    assert result.stdout == "updated: fix-login (4 lines)\n"
    assert result.stderr.startswith(
        'corral: warning: <stdin>:4: "### Task two: Validate the form" needs a task'
    )
    assert result.stderr.rstrip().endswith("stored anyway: fix the plan before implementing")
    assert show(repo, "fix-login")["content"] == MALFORMED


def test_update_content_refuses_a_terminal_on_stdin(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    leader, follower = os.openpty()
    try:
        result = subprocess.run(
            [CORRAL, "task", "update-content", "fix-login"],
            cwd=repo,
            env=clean_env(),
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "reads the new content from stdin, which is a terminal" in result.stderr
    assert "--file PATH" in result.stderr
    assert show(repo, "fix-login")["content"] == ""


def test_update_content_of_an_unknown_task_fails(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "p.md", PLAN)
    message = fails(repo, 1, "task", "update-content", "ghost", "--file", str(plan))
    assert message.startswith('no task named "ghost" in project')


def test_update_content_from_a_missing_file_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    missing = tmp_path / "nope.md"
    message = fails(repo, 2, "task", "update-content", "fix-login", "--file", str(missing))
    assert message == f"cannot read {missing}: No such file or directory"


# --- delete -----------------------------------------------------------------------------------------


def test_delete_with_yes_deletes_the_task(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    assert ok(repo, "task", "delete", "fix-login", "--yes") == "deleted: fix-login\n"
    assert fails(repo, 1, "task", "show", "fix-login").startswith('no task named "fix-login"')


def test_delete_without_yes_says_what_it_would_delete_and_keeps_the_task(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 2, "task", "delete", "fix-login")
    assert 'delete removes task "fix-login" (status ready, no wave tasks) for good' in message
    assert "Nothing was deleted" in message
    assert message.endswith("To delete it, add --yes: corral task delete fix-login --yes")
    assert show(repo, "fix-login")["name"] == "fix-login"


def test_delete_counts_the_wave_tasks_and_deletes_them_with_the_task(repo: Path) -> None:
    from actors.store import Store

    ok(repo, "task", "create", "fix-login", "--content", PLAN)
    with Store.open() as store:
        task = store.get_task(store.ensure_project(repo).id, "fix-login")
        store.set_wave_tasks(task.id, [(1, 1, "Validate the form"), (1, 2, "Fix the handler")])
    assert "(status ready, 2 wave tasks)" in fails(repo, 2, "task", "delete", "fix-login")
    ok(repo, "task", "delete", "fix-login", "--yes")
    with Store.open() as store:
        assert store.list_wave_tasks(task.id) == []


def test_delete_an_unknown_task_fails(repo: Path) -> None:
    assert fails(repo, 1, "task", "delete", "ghost", "--yes").startswith('no task named "ghost" in project')
    assert fails(repo, 1, "task", "delete", "ghost").startswith('no task named "ghost" in project')


@pytest.mark.parametrize("command", ["register", "update-content", "delete"])
def test_every_new_command_has_help_with_examples(tmp_path: Path, command: str) -> None:
    result = corral(tmp_path, "task", command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: corral task {command}")
    assert "examples:" in result.stdout


def test_register_a_plain_brief_without_waves_is_no_warning(repo: Path, tmp_path: Path) -> None:
    brief = tmp_path / "tidy-readme.md"
    brief.write_text("# Tidy the README\n\nFix the typos and the broken link.\n")
    result = corral(repo, "task", "register", str(brief))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "registered: tidy-readme → ready\n"
    assert result.stderr == ""  # a brief is valid content: one coder does it


# --- the size cap (issue 8 §5) ------------------------------------------------------------------------


def big_plan(size: int) -> str:
    """A plan of exactly `size` bytes of UTF-8."""
    head = "# A big plan\n"
    return head + "x" * (size - len(head))


def test_a_plan_file_over_one_mib_is_refused_naming_its_size_and_the_cap(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "big.md", big_plan(1024 * 1024 + 1))
    for args in (("task", "register", str(plan)), ("task", "create", "big", "--file", str(plan))):
        message = fails(repo, 2, *args)
        assert message.startswith(
            f"{plan} is 1.0 MiB (1048577 bytes), over the cap of 1 MiB: nothing was stored"
        )
    assert json.loads(ok(repo, "task", "list", "--json")) == []


def test_a_plan_of_exactly_one_mib_is_accepted(repo: Path, tmp_path: Path) -> None:
    plan = write(tmp_path / "edge.md", big_plan(1024 * 1024))
    ok(repo, "task", "register", str(plan))
    assert len(str(show(repo, "edge")["content"]).encode()) == 1024 * 1024


def test_update_content_from_stdin_over_one_mib_is_refused_and_keeps_the_old_content(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--content", PLAN)
    result = corral(repo, "task", "update-content", "fix-login", stdin=big_plan(3 * 1024 * 1024))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        "corral: error: the text read from stdin is 3 MiB, over the cap of 1 MiB: nothing was stored; keep "
        "it under 1 MiB (a long plan can be split into several tasks)\n"
    )
    assert show(repo, "fix-login")["content"] == PLAN


def test_create_with_content_over_one_mib_from_stdin_is_refused(repo: Path) -> None:
    text = big_plan(1024 * 1024 + 10)
    result = corral(repo, "task", "create", "big", "--file", "-", stdin=text)
    assert result.returncode == 2 and "over the cap of 1 MiB" in result.stderr
    assert json.loads(ok(repo, "task", "list", "--json")) == []


# --- agent-written text on the terminal (issue 8 §5) --------------------------------------------------


def test_task_show_and_list_neutralise_control_sequences_in_a_plan_and_its_title(
    repo: Path, tmp_path: Path
) -> None:
    plan = write(
        tmp_path / "evil.md",
        "# Evil \x1b]0;pwned\x07plan\n\nStep one.\x1b[2A\x1b[2K\x9b31mred\x08over\n",
    )
    ok(repo, "task", "register", str(plan), "--topic", "auth")
    shown = ok(repo, "task", "show", "evil")
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown and "\x08" not in shown
    assert "title:        Evil ^[]0;pwned^Gplan\n" in shown
    assert shown.endswith("Step one.^[[2A^[[2K\\x9b31mred^Hover\n")
    listed = ok(repo, "task", "list")
    assert "\x1b" not in listed
    data = json.loads(ok(repo, "task", "show", "evil", "--json"))  # JSON keeps the text, escaped
    assert data["title"] == "Evil \x1b]0;pwned\x07plan"
