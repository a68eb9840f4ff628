"""The CLI's answers to bad input and the bugs of issue 8 §5, as a real `corral` process in a real git
repository on a private database: a usage error (exit 2) naming the option, never a traceback; a command's
own usage for its unknown flag; `--project` from anywhere; one word for a planned task; no wiped content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli_kit import corral, fails, ok

HUGE = "99999999999999999999"  # beyond SQLite's 64-bit integers


@pytest.fixture
def repo(corral_home: Path, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A private runtime dir: no poke reaches, and no signal process defers to, a daemon someone else runs.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(runtime))
    return git_repo


def _usage_error(cwd: Path, *args: str) -> tuple[str, str]:
    """Run a command that must be a usage error: (its usage line, its error message)."""
    result = corral(cwd, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    first, *_, last = result.stderr.splitlines()
    assert last.startswith("corral: error: ")
    return first, last.removeprefix("corral: error: ")


# -- integers beyond 64 bits ---------------------------------------------------------------------------------


def test_a_wave_beyond_64_bits_is_a_usage_error_and_changes_nothing(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    _, message = _usage_error(repo, "task", "implement", "fix-login", "--wave", HUGE)
    assert message == f"task implement: argument --wave: must be at most 9223372036854775807, got {HUGE}"
    task = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert task["status"] == "ready"  # not moved to implementing
    assert json.loads(ok(repo, "signal", "list", "--json")) == []  # and no signal the claimer cannot apply


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (("signal", "list", "--limit", HUGE), "--limit"),
        (("audit", "--limit", HUGE), "--limit"),
        (("instance", "capture", "x", "--lines", HUGE), "--lines"),
        (("instance", "capture", "x", "--lines", f"-{HUGE}"), "--lines"),
    ],
)
def test_integers_beyond_64_bits_are_usage_errors_naming_the_option(
    repo: Path, command: tuple[str, ...], option: str
) -> None:
    ok(repo, "task", "create", "t")
    result = corral(repo, *command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr
    assert option in result.stderr.splitlines()[-1]


def test_a_payload_integer_beyond_64_bits_is_refused_before_it_is_stored(repo: Path) -> None:
    ok(repo, "task", "create", "t")
    payload = f'{{"wave_number": {HUGE}}}'
    message = fails(repo, 1, "signal", "emit", "implement_wave", "t", "--payload", payload)
    assert "<= 9223372036854775807 - at `$.wave_number`" in message
    assert json.loads(ok(repo, "signal", "list", "--json")) == []


def test_the_largest_64_bit_limit_is_accepted(repo: Path) -> None:
    assert ok(repo, "signal", "list", "--limit", "9223372036854775807").startswith("no signals")


# -- an unknown flag is refused with the usage of the command it was given to --------------------------------


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (("task", "list", "--frob"), "usage: corral task list "),
        (("task", "implement", "x", "--frob", "1"), "usage: corral task implement "),
        (("signal", "list", "--frob"), "usage: corral signal list "),
        (("instance", "kill", "x", "--frob"), "usage: corral instance kill "),
        (("audit", "--frob"), "usage: corral audit "),
        (("task", "--frob", "list"), "usage: corral task "),
    ],
)
def test_an_unknown_flag_prints_the_usage_of_its_subcommand(
    repo: Path, command: tuple[str, ...], usage: str
) -> None:
    first, message = _usage_error(repo, *command)
    assert first.startswith(usage), first
    assert "unrecognized arguments: --frob" in message


# -- update-content ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", ["", "\n", "  \n\t\n"])
def test_update_content_refuses_empty_content_and_keeps_what_was_there(repo: Path, empty: str) -> None:
    ok(repo, "task", "create", "fix-login", "--content", "# Fix the login\n")
    result = corral(repo, "task", "update-content", "fix-login", stdin=empty)
    assert result.returncode == 2 and result.stdout == ""
    assert "is empty; nothing was changed" in result.stderr and "--allow-empty" in result.stderr
    task = json.loads(ok(repo, "task", "show", "fix-login", "--json"))
    assert task["content"] == "# Fix the login\n"


def test_update_content_from_an_empty_file_is_refused_too(repo: Path, tmp_path: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--content", "# Fix the login\n")
    (tmp_path / "empty.md").write_text("")
    message = fails(repo, 2, "task", "update-content", "fix-login", "--file", str(tmp_path / "empty.md"))
    assert "empty.md is empty" in message
    assert json.loads(ok(repo, "task", "show", "fix-login", "--json"))["content"] == "# Fix the login\n"


def test_update_content_with_allow_empty_clears_it(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--content", "# Fix the login\n")
    assert (
        ok(repo, "task", "update-content", "fix-login", "--allow-empty", stdin="")
        == "updated: fix-login (0 lines)\n"
    )
    assert json.loads(ok(repo, "task", "show", "fix-login", "--json"))["content"] == ""


# -- --project from anywhere ---------------------------------------------------------------------------------


def test_task_signal_and_audit_commands_act_on_a_project_named_from_anywhere(
    repo: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "pkg").mkdir()
    for project in (str(repo / "pkg"), repo.name, str(repo)):  # a path in it (registers it), then its name
        name = f"t{abs(hash(project)) % 1000}"
        out = ok(elsewhere, "task", "create", name, "--project", project, "--content", "# T\n")
        assert out == f"created: {name} → ready\n"
    names = [t["name"] for t in json.loads(ok(elsewhere, "task", "list", "--json", "--project", repo.name))]
    assert len(names) == 3
    assert ok(repo, "task", "list", "--json") == ok(
        elsewhere, "task", "list", "--json", "--project", str(repo)
    )
    first = names[0]
    ok(elsewhere, "task", "show", first, "--project", repo.name)
    assert ok(elsewhere, "task", "transition", first, "plan_start", "--project", repo.name) == (
        f"{first}: ready → planning\n"
    )
    ok(elsewhere, "signal", "emit", "planner_finished", first, "--project", repo.name)
    listed = json.loads(ok(elsewhere, "signal", "list", "--json", "--project", repo.name))
    assert [s["signal_type"] for s in listed] == ["planner_finished"]
    assert "1 signal in project" in ok(elsewhere, "signal", "process", "--once", "--project", repo.name)
    audit = json.loads(ok(elsewhere, "audit", "--json", "--project", repo.name, "--task", first))
    assert audit and all(row["task"] == first for row in audit)
    ok(elsewhere, "task", "delete", first, "--yes", "--project", repo.name)


def test_a_project_that_is_neither_registered_nor_a_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    message = fails(tmp_path, 1, "task", "list", "--project", "nope")
    assert message.startswith('no project named "nope"')
    message = fails(tmp_path, 2, "task", "list", "--project", str(tmp_path))
    assert "is a directory, but not in a git repository" in message


# -- "planned": one word everywhere --------------------------------------------------------------------------


def test_a_planned_task_is_planned_in_the_list_the_transition_line_signals_and_the_audit(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--content", "# Fix\n")
    ok(repo, "task", "transition", "fix-login", "plan_start")
    assert (
        ok(repo, "task", "transition", "fix-login", "planner_finished") == "fix-login: planning → planned\n"
    )
    assert ok(repo, "task", "list").splitlines()[1].split()[:2] == ["fix-login", "planned"]
    assert ok(repo, "task", "transition", "fix-login", "cancel") == "fix-login: planned → cancelled\n"
    ok(repo, "task", "transition", "fix-login", "reopen")
    ok(repo, "signal", "emit", "planner_finished", "fix-login")
    ok(repo, "signal", "process", "--once")
    (signal,) = json.loads(ok(repo, "signal", "list", "--json"))
    assert signal["result"] == "planning → planned"
    assert ok(repo, "task", "implement", "fix-login") == "fix-login: planned → implementing\n"
    messages = [row["message"] for row in json.loads(ok(repo, "audit", "--json", "--task", "fix-login"))]
    assert "fix-login: planned → implementing (implement_start, by user)" in messages
    assert "fix-login: planning → planned (planner_finished, by agent)" not in messages  # sent by the user
    assert "fix-login: planning → planned (planner_finished, by user)" in messages
    assert not any("→ ready (planner_finished" in m or "ready → implementing" in m for m in messages)


def test_a_path_component_over_255_bytes_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    long = str(tmp_path / ("a" * 300)) + ".md"
    assert "File name too long" in fails(repo, 2, "task", "register", long)
    assert "File name too long" in fails(repo, 2, "task", "create", "t", "--file", long)
    assert fails(repo, 1, "task", "list", "--project", long).startswith("no project named")
