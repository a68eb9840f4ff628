"""Instances through a real daemon (started by the CLI), real tmux on a private socket, a real git repository
and corral-sim as the agent: a missing program behind the nice wrapper, restart of a paused instance, what
`kill` prints, the resources a killed instance gives back, and how an agent killed by SIGKILL is recorded."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from frontends.daemon.lock import read_pid
from tests.conftest import git
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import corral, fails, ok
from tests.integration.test_instances_api import Env
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _interactive_profile(repo: Path) -> None:
    config = repo / ".corral" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('[resources]\nprofile = "interactive"\n')


def test_a_missing_program_is_refused_up_front_also_behind_the_nice_wrapper(env: Env, git_repo: Path) -> None:
    _interactive_profile(git_repo)
    for program in ("no-such-agent-program", "/no/such/agent"):
        result = corral(git_repo, "instance", "start", "ghost", "--program", program)
        assert result.returncode != 0 and result.stdout == "", result.stdout
        assert "Traceback" not in result.stderr
        assert program in result.stderr and (
            "not found on PATH" in result.stderr or "not an executable" in result.stderr
        )
    assert ok(git_repo, "instance", "list") == "no instances in project proj\n"
    assert "corral/ghost" not in git(git_repo, "branch", "--list")  # refused before a worktree was made
    assert not (git_repo / ".worktrees").exists() or not any((git_repo / ".worktrees").iterdir())


# -- kill, restart, pause ------------------------------------------------------------------------------------


def _wait_status(env: Env, repo: Path, title: str, *statuses: str) -> dict[str, object]:
    return api.wait_status(env, repo, title, *statuses)


def test_kill_prints_the_status_after_the_kill_and_restart_starts_it_again(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "k", "--program", api.SIM)
    _wait_status(env, git_repo, "k", "ready")
    assert ok(git_repo, "instance", "kill", "k") == "killed k: exited (killed by request)\n"
    shown = json.loads(ok(git_repo, "instance", "show", "k", "--json"))
    assert (shown["status"], shown["reason"]) == ("exited", "killed by request")
    for project in (git_repo.name, str(git_repo)):  # from anywhere, by name or by path
        there = json.loads(ok(git_repo.parent, "instance", "show", "k", "--json", "--project", project))
        assert (there["title"], there["reason"]) == ("k", "killed by request")
    assert (
        ok(git_repo, "instance", "kill", "k") == "killed k: exited (killed by request)\n"
    )  # again: no change
    message = fails(git_repo, 1, "instance", "send", "k", "hello")
    assert (
        message == 'instance "k" has ended (exited: killed by request); restart it: corral instance restart k'
    )
    assert ok(git_repo, "instance", "restart", "k").startswith("restarted k: loading")
    assert _wait_status(env, git_repo, "k", "ready")["restarts"] == 0


def test_restart_of_a_paused_instance_resumes_it(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "p", "--program", api.SIM)
    _wait_status(env, git_repo, "p", "ready")
    assert ok(git_repo, "instance", "pause", "p").startswith("paused p: paused")
    assert not Path(api.view(env, git_repo, "p")["worktree"]).exists()
    assert ok(git_repo, "instance", "restart", "p").startswith("restarted p: loading")
    ready = _wait_status(env, git_repo, "p", "ready")
    assert Path(str(ready["worktree"])).is_dir()  # its worktree is back


_POOL_GROWTH = 2


def _usage(pid: int) -> tuple[int, int]:
    """(open file descriptors, threads) of process `pid`."""
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


def test_killed_instances_give_back_their_fds_and_threads(env: Env, git_repo: Path) -> None:
    base = f"/v1/repos/{git_repo.name}/instances"
    call = env.client.call
    env.client.ensure_running()
    call("POST", "/v1/repos", json={"path": str(git_repo)})
    call("POST", base, json={"title": "warm-up", "program": api.SIM}, timeout=60)  # the project, tmux, pools
    call("POST", f"{base}/warm-up/kill", timeout=60)
    pid = read_pid(env.client.paths.pid_file)
    assert pid is not None
    baseline = _usage(pid)

    titles = [f"k{n}" for n in range(20)]
    for title in titles:
        call("POST", base, json={"title": title, "program": api.SIM}, timeout=60)
    running = _usage(pid)
    assert running[0] > baseline[0] + 20 and running[1] >= baseline[1] + 20  # each agent holds some of both
    reasons = {call("POST", f"{base}/{title}/kill", timeout=60)["reason"] for title in titles}

    def given_back() -> bool:
        fds, threads = _usage(pid)
        # The daemon's thread pools grow on demand up to a fixed size (its ask pool has 2 threads): one
        # more pool thread may have started meanwhile; a thread kept per kill would be 20.
        return fds <= baseline[0] and threads <= baseline[1] + _POOL_GROWTH

    try:
        wait_until(given_back, 30, "the killed instances' fds and threads to be given back")
    except AssertionError:
        raise AssertionError(
            f"baseline {baseline}, running {running}, after the kills {_usage(pid)}"
        ) from None
    assert reasons == {"killed by request"}
    assert [v["status"] for v in call("GET", base)] == ["exited"] * 21  # still listed


# -- an agent killed by SIGKILL ------------------------------------------------------------------------------


def _agent_pid(env: Env, repo: Path, title: str) -> int | None:
    """The pid of the live agent in the instance's tmux pane (None between two runs)."""
    session = api.view(env, repo, title)["session"]
    panes = [p for p in env.tmux.all_panes() if p.session == session and not p.dead]
    return panes[0].pid if panes else None


def _exits(env: Env, repo: Path, title: str) -> list[str]:
    rows = env.client.call("GET", f"/v1/repos/{repo.name}/audit?instance={title}&limit=200")
    return [r["message"] for r in rows if r["kind"] in ("child_exited", "instance_note", "instance_status")]


def test_an_agent_killed_by_sigkill_is_recorded_so_and_restarted(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "k9", "--program", api.SIM)
    _wait_status(env, git_repo, "k9", "ready")
    for round_ in (1, 2):
        if round_ == 2:  # and once more, adopted by a restarted daemon
            env.client.shutdown(timeout=30)
            env.client.ensure_running()
            _wait_status(env, git_repo, "k9", "ready")
        killed = _agent_pid(env, git_repo, "k9")
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        wait_until(
            lambda old=killed: _agent_pid(env, git_repo, "k9") not in (None, old),
            30,
            "the agent to be restarted",
        )
        shown = _wait_status(env, git_repo, "k9", "ready")
        assert shown["restarts"] >= 1
        messages = _exits(env, git_repo, "k9")
        assert "runtime of k9 exited: killed by SIGKILL; restarting" in messages, messages
        assert not any("exit status 0" in m or m.endswith("agent ended: normal") for m in messages), messages


def test_an_agent_stopped_by_corral_is_recorded_as_killed_by_request_not_as_a_clean_exit(
    env: Env, git_repo: Path
) -> None:
    ok(git_repo, "instance", "start", "kr", "--program", api.SIM)
    _wait_status(env, git_repo, "kr", "ready")
    ok(git_repo, "instance", "kill", "kr")
    messages = _exits(env, git_repo, "kr")
    assert "kr: killed by request" in messages
    assert not any("exit status 0" in m or "agent ended: normal" in m for m in messages), messages
