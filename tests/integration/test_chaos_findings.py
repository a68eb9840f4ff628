"""Bugs `corral chaos` found, each pinned where it was found: a real daemon process, tmux on a private socket,
corral-sim in every role, real git (the `env` fixture of test_instances_api)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from actors.store import Store
from protocols.errors import NotFoundError
from protocols.records import InstanceRecord
from tests.daemon_kit import kill_everything
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import Env
from tests.integration.test_task_flow import _configure, _wait_done
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _record(repo: Path, title: str) -> InstanceRecord | None:
    with Store.open() as store:
        try:
            return store.get_instance(repo.name, title)
        except NotFoundError:
            return None


def test_an_agent_of_a_done_task_left_recorded_running_is_not_brought_back_by_a_restarted_daemon(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen with `corral chaos --seed 2`: a full disk dropped the row write of a wave agent's end, so the row
    # still said running; the task went on to done; a later daemon restart brought the agent back, and it
    # ran on, for a task that was over, until the end of the campaign.
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")  # starts the daemon
    ok(git_repo, "task", "create", "t", "--content", "Fix the typo.")
    ok(git_repo, "task", "transition", "t", "implement_start")
    _wait_done(git_repo, 120)
    wait_until(lambda: _record(git_repo, "t-coder").status == "exited", 30, "the coder stopped")
    left = msgspec.structs.replace(_record(git_repo, "t-coder"), status="running", reason="")
    with Store.open() as store:  # what the lost write left behind
        store.upsert_instance(left)
    ok(git_repo, "daemon", "restart")

    ended = wait_until(
        lambda: (r := _record(git_repo, "t-coder")).status in ("exited", "failed") and r, 30, "the row mended"
    )
    assert ended.reason == "not brought back: its task t is done", ended
    assert not [s for s in env.tmux.list_sessions(prefix="") if "t-coder" in s], "it runs again"


def test_an_agent_still_running_for_a_task_that_ended_while_the_daemon_was_down_is_stopped_at_its_start(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen with `corral chaos --seed 11` (on the first version of the fix above): the daemon was killed while
    # the readiness agent worked; its signal moved the task to done as the new daemon started, before that
    # daemon's Project looked at its recorded agents. An agent of a task that is over was then neither
    # brought back nor stopped: its tmux session ran on. Here the task ends by hand while no daemon runs.
    _configure(git_repo, monkeypatch)
    ok(git_repo, "instance", "list")  # starts the daemon
    ok(git_repo, "task", "create", "t", "--content", "Fix the typo.\n\nsim-fault: silent roles=reviewer\n")
    ok(git_repo, "task", "transition", "t", "implement_start")
    wait_until(lambda: (r := _record(git_repo, "t-review-1")) and r.worked, 60, "the reviewer at work")
    kill_everything(env.client.paths.dir)  # the daemon and its heart: the tmux agent runs on
    session = _record(git_repo, "t-review-1").session
    assert session in env.tmux.list_sessions(prefix="")
    ok(git_repo, "task", "set-status", "t", "done", "--force", CORRAL_AUTOSTART="0")

    ok(git_repo, "daemon", "start")
    ended = wait_until(
        lambda: (r := _record(git_repo, "t-review-1")).status in ("exited", "failed") and r, 30, "it stopped"
    )
    assert ended.reason == "stopped: its task t is done", ended
    wait_until(lambda: session not in env.tmux.list_sessions(prefix=""), 10, "its session gone")
