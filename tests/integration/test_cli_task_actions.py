"""`corral task implement / start-over / push` as a real process in a real git repository."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.conftest import git
from tests.integration.cli_kit import corral, fails, ok


@pytest.fixture
def repo(corral_home: Path, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A private runtime dir: the poke after a change must never reach a daemon the developer is running.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(runtime))
    return git_repo


def status(repo: Path, name: str) -> str:
    return json.loads(ok(repo, "task", "show", name, "--json"))["status"]


def signals(repo: Path) -> list[dict[str, object]]:
    return json.loads(ok(repo, "signal", "list", "--json"))


# --- implement --------------------------------------------------------------------------------------


def test_implement_moves_a_ready_task_to_implementing(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    assert ok(repo, "task", "implement", "fix-login") == "fix-login: ready → implementing\n"
    assert status(repo, "fix-login") == "implementing"
    assert signals(repo) == []


def test_implement_starts_a_planned_task_too(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    ok(repo, "task", "set-status", "fix-login", "planned", "--force")
    assert ok(repo, "task", "implement", "fix-login") == "fix-login: planned → implementing\n"


def test_implement_with_wave_emits_an_implement_wave_signal_from_the_user(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    out = ok(repo, "task", "implement", "fix-login", "--wave", "2")
    (signal,) = signals(repo)
    assert out == f"fix-login: ready → implementing\nfix-login: wave 2 requested (signal {signal['id']})\n"
    assert (signal["signal_type"], signal["task"], signal["source"], signal["status"]) == (
        "implement_wave",
        "fix-login",
        "user",
        "pending",
    )
    assert json.loads(str(signal["payload"])) == {"wave_number": 2}


@pytest.mark.parametrize("wave", ["0", "-1", "two"])
def test_implement_refuses_a_wave_that_is_not_a_positive_integer(repo: Path, wave: str) -> None:
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 2, "task", "implement", "fix-login", "--wave", wave)
    assert message.startswith("task implement: argument --wave: ")
    assert status(repo, "fix-login") == "ready"


@pytest.mark.parametrize(
    ("forced", "advice"),
    [
        ("planning", "wait for the planner to finish"),
        ("implementing", "it is implementing already"),
        ("reviewing", "being reviewed"),
        ("done", "corral task transition fix-login reimplement"),
        ("cancelled", "corral task transition fix-login reopen"),
    ],
)
def test_implement_from_another_status_is_refused_naming_it_and_what_to_do(
    repo: Path, forced: str, advice: str
) -> None:
    ok(repo, "task", "create", "fix-login")
    ok(repo, "task", "set-status", "fix-login", forced, "--force")
    message = fails(repo, 1, "task", "implement", "fix-login", "--wave", "1")
    assert message.startswith(
        f'cannot implement task "fix-login": it is {forced}, and implement starts a ready'
    )
    assert advice in message
    assert status(repo, "fix-login") == forced
    assert signals(repo) == []


def test_implement_obeys_the_topic_rule_and_emits_no_wave(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login", "--topic", "auth")
    ok(repo, "task", "create", "add-sso", "--topic", "auth")
    ok(repo, "task", "implement", "fix-login")
    message = fails(repo, 1, "task", "implement", "add-sso", "--wave", "1")
    assert message == (
        'task "add-sso" cannot start implementing: task "fix-login" of the same topic "auth" is '
        "implementing; finish or cancel it first"
    )
    assert status(repo, "add-sso") == "ready"
    assert signals(repo) == []


def test_implement_an_unknown_task_fails_naming_it(repo: Path) -> None:
    assert fails(repo, 1, "task", "implement", "nope") == 'no task named "nope" in project proj'


@pytest.mark.parametrize("command", [("implement", "fix-login"), ("start-over", "fix-login", "--yes")])
def test_a_change_pokes_a_listening_daemon(repo: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    from actors.wake import WakeListener

    ok(repo, "task", "create", "fix-login")
    if command[0] == "start-over":
        ok(repo, "task", "set-status", "fix-login", "done", "--force")
    woken = threading.Event()
    with WakeListener(woken.set, tmp_path / "runtime" / "wake.sock"):
        ok(repo, "task", *command)
        assert woken.wait(timeout=10)


def test_implement_succeeds_with_a_stale_wake_socket(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "runtime" / "wake.sock").write_text("not a socket")  # no daemon behind it: the poke fails
    ok(repo, "task", "create", "fix-login")
    assert ok(repo, "task", "implement", "fix-login") == "fix-login: ready → implementing\n"


# --- start-over -------------------------------------------------------------------------------------


def test_start_over_without_yes_explains_and_changes_nothing(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    ok(repo, "task", "set-status", "fix-login", "done", "--force")
    message = fails(repo, 2, "task", "start-over", "fix-login")
    assert message.startswith('start-over sends task "fix-login" (status done) back to planning')
    assert "a new plan" in message and "Nothing was changed" in message
    assert message.endswith("add --yes: corral task start-over fix-login --yes")
    assert status(repo, "fix-login") == "done"


def test_start_over_with_yes_sends_a_done_task_back_to_planning(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    ok(repo, "task", "set-status", "fix-login", "done", "--force")
    assert ok(repo, "task", "start-over", "fix-login", "--yes") == "fix-login: done → planning\n"
    assert status(repo, "fix-login") == "planning"


def test_start_over_from_another_status_is_refused_with_or_without_yes(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    expected = (
        'invalid transition: event "start_over" does not apply to a task in status "ready" '
        "(allowed: plan_start, implement_start, cancel)"
    )
    assert fails(repo, 1, "task", "start-over", "fix-login") == expected
    assert fails(repo, 1, "task", "start-over", "fix-login", "--yes") == expected
    assert status(repo, "fix-login") == "ready"


def test_start_over_an_unknown_task_fails_naming_it(repo: Path) -> None:
    assert fails(repo, 1, "task", "start-over", "nope", "--yes") == 'no task named "nope" in project proj'


# --- push -------------------------------------------------------------------------------------------


def bare_remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    return remote


def test_push_pushes_the_task_branch_and_names_the_commit(repo: Path, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path)
    git(repo, "remote", "add", "origin", str(remote))
    ok(repo, "task", "create", "fix-login")
    git(repo, "branch", "corral/fix-login")
    head = git(repo, "rev-parse", "corral/fix-login").strip()
    assert ok(repo, "task", "push", "fix-login") == f"pushed corral/fix-login to origin (commit {head[:7]})\n"
    assert git(remote, "rev-parse", "refs/heads/corral/fix-login").strip() == head
    assert git(repo, "config", "branch.corral/fix-login.remote").strip() == "origin"


def test_push_to_another_remote_and_a_custom_branch(repo: Path, tmp_path: Path) -> None:
    remote = bare_remote(tmp_path)
    git(repo, "remote", "add", "upstream", str(remote))
    ok(repo, "task", "create", "add-sso", "--branch", "feature/sso")
    git(repo, "branch", "feature/sso")
    out = ok(repo, "task", "push", "add-sso", "--remote", "upstream")
    assert out.startswith("pushed feature/sso to upstream (commit ")
    assert git(remote, "branch", "--list", "feature/sso").strip() == "feature/sso"


def test_push_without_the_remote_fails_saying_how_to_add_one(repo: Path) -> None:
    ok(repo, "task", "create", "fix-login")
    git(repo, "branch", "corral/fix-login")
    message = fails(repo, 1, "task", "push", "fix-login")
    assert message == (
        f"cannot push corral/fix-login: {repo} has no remote 'origin' (remotes: none); "
        "add one with `git remote add origin <url>`"
    )


def test_push_to_a_remote_git_cannot_reach_gives_git_reason_on_one_line(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", str(tmp_path / "missing.git"))
    ok(repo, "task", "create", "fix-login")
    git(repo, "branch", "corral/fix-login")
    result = corral(repo, "task", "push", "fix-login")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("corral: error: cannot push corral/fix-login to origin: fatal: ")
    assert "does not appear to be a git repository" in result.stderr


def test_a_rejected_push_gives_git_reason_without_its_hints(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", str(bare_remote(tmp_path)))
    ok(repo, "task", "create", "fix-login")
    git(repo, "branch", "corral/fix-login")
    ok(repo, "task", "push", "fix-login")
    git(repo, "commit", "-q", "--allow-empty", "-m", "someone else's")  # on main: the remote gets ahead
    git(repo, "push", "-q", "origin", "main:refs/heads/corral/fix-login")
    message = fails(repo, 1, "task", "push", "fix-login")
    assert message.startswith("cannot push corral/fix-login to origin: ")
    assert "[rejected]" in message and "failed to push some refs" in message
    assert "hint:" not in message


def test_push_before_the_branch_exists_fails_clearly(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", str(bare_remote(tmp_path)))
    ok(repo, "task", "create", "fix-login")
    message = fails(repo, 1, "task", "push", "fix-login")
    assert message.startswith(
        f'cannot push task "fix-login": its branch corral/fix-login does not exist in {repo}'
    )
    assert "nothing was pushed" in message


def test_push_an_unknown_task_fails_naming_it(repo: Path) -> None:
    assert fails(repo, 1, "task", "push", "nope") == 'no task named "nope" in project proj'
