"""The heart (issue 8 §1) as real processes: a daemon killed with -9 is restarted and answers again; one that
exits 1 at once every time is restarted up to the intensity, then the heart gives up and says why; a heart
killed with -9 is replaced and the new one adopts the running daemon; SIGTERM to the heart is an orderly stop;
`daemon start --foreground` runs no heart. Each test has its own runtime directory and CORRAL_HOME (the
fixtures of test_daemon.py), which nothing outlives."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from frontends.daemon import DaemonClient
from frontends.daemon.lock import pid_alive, read_pid
from tests.daemon_kit import daemons_of, hearts_of
from tests.integration import test_daemon
from tests.integration.cli_kit import corral
from tests.unit.actor_kit import wait_until

runtime_dir = test_daemon.runtime_dir  # fixtures: a private runtime dir, autostart on, nothing left behind
client = test_daemon.client
start = test_daemon.start


def status_json(expect_code: int = 0) -> dict:
    result = corral(Path("/"), "daemon", "status", "--json")
    assert result.returncode == expect_code, result.stdout + result.stderr
    return json.loads(result.stdout)


def answered_by_another(client: DaemonClient, old: int) -> int | None:
    pong = client.ping()
    return int(pong["pid"]) if pong is not None and pong["pid"] != old else None


def test_a_daemon_killed_with_sigkill_is_restarted_by_its_heart_and_status_says_why(
    client: DaemonClient, runtime_dir: Path
) -> None:
    old = start(client)
    (heart,) = hearts_of(runtime_dir)
    os.kill(old, signal.SIGKILL)

    new = wait_until(lambda: answered_by_another(client, old), 20, "the heart to restart the daemon")
    assert hearts_of(runtime_dir) == [heart] and daemons_of(runtime_dir) == [new]  # the same heart
    status = status_json()
    state = status["heart"]["state"]
    assert status["pid"] == new and state["restarts"] == 1 and state["daemon_pid"] == new
    assert state["last_exit"]["pid"] == old and state["last_exit"]["reason"] == "killed by SIGKILL"
    human = corral(Path("/"), "daemon", "status").stdout
    assert f"heart:       pid {heart}, running; 1 restart of the daemon" in human
    assert "last exit:   killed by SIGKILL at 20" in human and f"(pid {old})" in human
    log = test_daemon.log_text(runtime_dir)
    assert f"the daemon (pid {old}) ended abnormally: killed by SIGKILL" in log


def test_a_daemon_that_exits_1_at_once_every_time_is_restarted_up_to_the_intensity_then_the_heart_gives_up(
    client: DaemonClient, runtime_dir: Path, corral_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_HEART_MAX_RESTARTS", "3")  # the intensity: more than 3 within 60 s
    monkeypatch.setenv("CORRAL_HEART_PERIOD_S", "60")
    old = start(client)
    (heart,) = hearts_of(runtime_dir)
    # From now on every daemon that starts finds a database it refuses, and exits 1 at once.
    broken = corral_home / "broken.db"
    broken.write_text("not a database")
    for suffix in ("-wal", "-shm"):
        (corral_home / f"corral.db{suffix}").unlink(missing_ok=True)
    os.replace(broken, corral_home / "corral.db")
    os.kill(old, signal.SIGKILL)

    wait_until(lambda: not pid_alive(heart), 60, "the heart to give up")
    assert daemons_of(runtime_dir) == [] and hearts_of(runtime_dir) == []
    status = status_json(expect_code=1)
    state = status["running"] is False and status["heart"]["state"]
    assert state["state"] == "gave_up" and state["restarts"] == 3
    assert state["gave_up"].startswith(
        "the daemon ended abnormally 4 times within 60 s (more than 3), last: "
    )
    assert "exit status 1: cannot start: " in state["gave_up"] and "not a SQLite database" in state["gave_up"]
    assert state["gave_up"].endswith("fix the cause, then: corral daemon start")
    assert state["last_exit"]["reason"].startswith("exit status 1: cannot start: ")
    human = corral(Path("/"), "daemon", "status")
    assert human.returncode == 1 and "heart:     gave up: the daemon ended abnormally 4 times" in human.stdout
    log = test_daemon.log_text(runtime_dir)
    assert log.count("ended abnormally: exit status 1") == 3 and "the heart gave up" in log


def test_a_heart_killed_with_sigkill_is_replaced_and_the_new_heart_restarts_the_daemon(
    client: DaemonClient, runtime_dir: Path
) -> None:
    daemon = start(client)
    (old_heart,) = hearts_of(runtime_dir)
    os.kill(old_heart, signal.SIGKILL)

    def new_heart() -> int | None:
        hearts = hearts_of(runtime_dir)
        holder = read_pid(runtime_dir / "heart.pid")
        return holder if hearts == [holder] and holder != old_heart else None

    heart = wait_until(new_heart, 20, "the daemon to start a new heart")
    assert client.ping()["pid"] == daemon  # the daemon was never down
    wait_until(lambda: status_json()["heart"]["state"]["adopted"], 20, "the new heart to adopt the daemon")
    assert status_json()["heart"]["pid"] == heart
    human = corral(Path("/"), "daemon", "status").stdout
    assert "adopted this daemon after its previous heart was lost" in human

    os.kill(daemon, signal.SIGKILL)  # the new heart, not the daemon's parent, restarts it all the same
    new = wait_until(lambda: answered_by_another(client, daemon), 20, "the new heart to restart the daemon")
    assert hearts_of(runtime_dir) == [heart] and daemons_of(runtime_dir) == [new]
    last = status_json()["heart"]["state"]["last_exit"]
    assert last["pid"] == daemon and last["reason"].startswith("ended without an exit status")


def test_sigterm_to_the_heart_stops_the_daemon_in_order_then_the_heart(
    client: DaemonClient, runtime_dir: Path
) -> None:
    daemon = start(client)
    (heart,) = hearts_of(runtime_dir)
    os.kill(heart, signal.SIGTERM)
    wait_until(lambda: not pid_alive(heart) and not pid_alive(daemon), 30, "the heart and the daemon to stop")
    assert daemons_of(runtime_dir) == [] and hearts_of(runtime_dir) == []
    assert not (runtime_dir / "daemon.sock").exists()
    log = test_daemon.log_text(runtime_dir)
    assert "orderly shutdown (SIGTERM)" in log and "corral daemon stopped" in log
    assert status_json(expect_code=1)["heart"]["state"]["state"] == "stopped"


def test_daemon_restart_puts_a_new_daemon_under_a_new_heart(client: DaemonClient, runtime_dir: Path) -> None:
    old = start(client)
    (old_heart,) = hearts_of(runtime_dir)
    result = corral(Path("/"), "daemon", "restart")
    assert result.returncode == 0, result.stderr
    stopped, started = result.stdout.splitlines()
    assert stopped == f"corral daemon stopped (pid {old}), and its heart (pid {old_heart})"
    new = client.ping()["pid"]
    (heart,) = hearts_of(runtime_dir)
    assert started.startswith(f"corral daemon started (pid {new}, under its heart, pid {heart}) in ")
    assert new != old and heart != old_heart and daemons_of(runtime_dir) == [new]
    assert not (runtime_dir / "daemon.stopped").exists()  # a restart is not a stop: nothing to report later


@pytest.mark.parametrize(("systemd", "shown"), [(False, "foreground"), (True, "systemd")])
def test_a_foreground_daemon_runs_without_a_heart_and_status_says_what_restarts_it(
    runtime_dir: Path, monkeypatch: pytest.MonkeyPatch, systemd: bool, shown: str
) -> None:
    if systemd:
        monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")  # what systemd sets for a service
    process = test_daemon.foreground(runtime_dir)
    try:
        assert hearts_of(runtime_dir) == []
        heart = status_json()["heart"]
        assert heart["supervised_by"] == shown and heart["running"] is False and heart["problem"] == ""
        human = corral(Path("/"), "daemon", "status").stdout
        expected = {
            "foreground": "none: started with --foreground, nothing restarts the daemon if it dies",
            "systemd": "systemd (the user unit restarts the daemon if it fails)",
        }
        assert f"heart:       {expected[shown]}\n" in human
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
