"""The daemon is always there (issue 8 §1): a command that asks the daemon to act starts it when it is not
running, says so once, and the work actually happens. Real processes: the CLI, a daemon under its heart, tmux
on a private socket, a real git repository, corral-sim as every agent. The `env` fixture
(test_instances_api.py) gives each test its own runtime directory, CORRAL_HOME and tmux server, with autostart
on, and leaves nothing running."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from actors.store import Store
from frontends.daemon.lock import read_pid
from tests.daemon_kit import daemons_of, hearts_of, kill_everything
from tests.integration import test_instances_api as api
from tests.integration import test_task_flow as flow
from tests.integration.cli_kit import CORRAL, clean_env, corral, fails, ok
from tests.integration.test_instances_api import Env
from tests.unit.actor_kit import wait_until

env = api.env

STARTED = re.compile(r"started the corral daemon, pid (\d+)\n")


def started_pid(stderr: str) -> int:
    """The pid in the one line a command that started the daemon prints; fails unless stderr is just that."""
    match = STARTED.fullmatch(stderr)
    assert match is not None, stderr
    return int(match.group(1))


def signal_statuses(repo: Path) -> list[str]:
    return [s["status"] for s in json.loads(ok(repo, "signal", "list", "--json"))]


def test_task_implement_with_no_daemon_starts_one_says_so_once_and_the_task_is_carried_out(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow._configure(git_repo, monkeypatch)  # corral-sim plays every role
    ok(git_repo, "task", "create", "t", "--content", flow.PLAN)
    assert env.client.ping() is None

    implement = corral(git_repo, "task", "implement", "t")
    assert implement.returncode == 0, implement.stderr
    assert implement.stdout == "t: ready → implementing\n"
    pid = started_pid(implement.stderr)
    assert env.client.ping()["pid"] == pid and len(hearts_of(env.client.paths.dir)) == 1

    flow._wait_done(git_repo)  # coder, reviewer and readiness ran: the daemon carried the task out
    assert flow._started(git_repo) == ["t-coder", "t-review-1", "t-verify-1"]
    again = corral(git_repo, "task", "transition", "t", "start_over")
    assert again.returncode == 0 and again.stderr == ""  # the daemon runs: nothing more to say
    assert daemons_of(env.client.paths.dir) == [pid]


@pytest.mark.parametrize(
    "command",
    [
        ("task", "transition", "t", "plan_start"),
        ("task", "set-status", "t", "planning", "--force"),
        ("signal", "emit", "plan_start", "t"),
        ("instance", "list"),
    ],
    ids=["transition", "set-status", "signal-emit", "instance-list"],
)
def test_every_command_that_asks_the_daemon_to_act_starts_it(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    flow._configure(git_repo, monkeypatch)
    ok(git_repo, "task", "create", "t")
    result = corral(git_repo, *command)
    assert result.returncode == 0, result.stderr
    pid = started_pid(result.stderr)
    assert env.client.ping()["pid"] == pid
    if command[0] == "signal":  # the signal it emitted is applied by the daemon it started
        wait_until(lambda: signal_statuses(git_repo) == ["done"], 30, "the daemon to apply the signal")


def test_task_start_over_starts_the_daemon(env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow._configure(git_repo, monkeypatch)
    ok(git_repo, "task", "create", "t")
    ok(git_repo, "task", "set-status", "t", "done", "--force", CORRAL_AUTOSTART="0")
    assert env.client.ping() is None
    result = corral(git_repo, "task", "start-over", "t", "--yes")
    assert result.returncode == 0 and result.stdout == "t: done → planning\n"
    assert env.client.ping()["pid"] == started_pid(result.stderr)


def test_a_command_that_restarts_a_daemon_stopped_with_daemon_stop_says_so(env: Env, git_repo: Path) -> None:
    ok(git_repo, "daemon", "start")
    stopped = ok(git_repo, "daemon", "stop")
    assert stopped.startswith("corral daemon stopped (pid ")

    listed = corral(git_repo, "instance", "list")
    assert listed.returncode == 0, listed.stderr
    match = re.fullmatch(
        r"started the corral daemon, pid (\d+) \(it had been stopped with `corral daemon stop` at "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)\n",
        listed.stderr,
    )
    assert match is not None, listed.stderr
    assert env.client.ping()["pid"] == int(match.group(1))

    # Said once: the marker went with the start. A daemon that dies and is started again is not "stopped".
    kill_everything(env.client.paths.dir)
    again = corral(git_repo, "instance", "list")
    assert again.returncode == 0 and env.client.ping()["pid"] == started_pid(again.stderr)


def test_an_agents_emit_with_no_daemon_returns_at_once_and_a_detached_daemon_applies_the_signal(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow._configure(git_repo, monkeypatch)
    ok(git_repo, "task", "create", "t")
    # As an agent calls it: its output read through pipes, as `$(corral signal emit …)` in a shell would. If
    # the heart or the daemon kept the agent's stdout or stderr, reading them to the end would never finish.
    emit = subprocess.run(
        [CORRAL, "signal", "emit", "plan_start", "t"],
        cwd=git_repo,
        env=clean_env() | {"CORRAL_MANAGED": "1", "CORRAL_TASK": "t"},
        stdin=subprocess.PIPE,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert emit.returncode == 0, emit.stderr
    assert emit.stdout == "signal 1 pending: plan_start t\n"
    assert emit.stderr == ""  # it did not wait for the daemon, so it has nothing to say about it
    with Store.open() as store:
        (signal,) = store.list_signals()
    assert signal.status == "pending"  # returned before any daemon could apply it

    runtime = env.client.paths.dir
    heart = wait_until(lambda: read_pid(runtime / "heart.pid"), 20, "the heart the emit started")
    assert _session(heart) == heart  # a session of its own: the agent's terminal cannot reach it
    assert Path(f"/proc/{heart}/fd/0").resolve() == Path("/dev/null")
    environ = Path(f"/proc/{heart}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith((b"CORRAL_MANAGED=", b"CORRAL_TASK="))]  # nobody's agent
    wait_until(lambda: env.client.ping() is not None, 20, "the daemon to answer")
    wait_until(lambda: signal_statuses(git_repo)[-1] == "done", 30, "the daemon to apply the signal")
    assert daemons_of(runtime) == [env.client.ping()["pid"]] and hearts_of(runtime) == [heart]


def test_two_commands_starting_the_daemon_at_once_leave_one_heart_one_daemon_and_one_notice(
    env: Env, git_repo: Path
) -> None:
    commands = [
        subprocess.Popen(
            [CORRAL, "instance", "list", "--json"],
            cwd=git_repo,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(c.communicate(timeout=60), c.returncode) for c in commands]
    assert [code for _, code in results] == [0, 0], results
    notices = [err for (_, err), _ in results if err]
    assert len(notices) == 1, results  # the one whose heart won says it started the daemon; the other not
    runtime = env.client.paths.dir
    wait_until(lambda: len(hearts_of(runtime)) == 1, 20, "the losing heart to exit")
    assert daemons_of(runtime) == [started_pid(notices[0])]


def test_with_autostart_off_commands_do_not_start_the_daemon(env: Env, git_repo: Path) -> None:
    ok(git_repo, "task", "create", "t")
    moved = corral(git_repo, "task", "transition", "t", "plan_start", CORRAL_AUTOSTART="0")
    assert moved.returncode == 0 and moved.stderr == ""
    message = fails(git_repo, 1, "instance", "list", CORRAL_AUTOSTART="0")
    assert message.startswith("the corral daemon is not running (no answer on ")
    assert "CORRAL_AUTOSTART=0: commands do not start it" in message
    assert env.client.ping() is None and hearts_of(env.client.paths.dir) == []


def _session(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[3])  # state ppid pgrp session: the session id
