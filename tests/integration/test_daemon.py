"""The daemon as real processes on real sockets: start, status, stop, signals, the pid lock, the API, SSE.

Each test has its own runtime directory (short, under /tmp: a socket path must fit in 107 bytes) and its
own CORRAL_HOME; the `daemon` fixture stops whatever daemon a test left running, by its pid, in teardown.
Waits are on conditions (a ping answers, a file disappears, a process exits), never fixed sleeps.
"""

from __future__ import annotations

import json
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontends.daemon import DaemonClient
from frontends.daemon.lock import pid_alive, read_pid
from tests.daemon_kit import daemons_of, hearts_of, kill_everything, stop_everything
from tests.integration.cli_kit import CORRAL, clean_env, corral
from tests.unit.actor_kit import wait_until

DAEMON = [sys.executable, "-m", "frontends.daemon.main"]


@pytest.fixture
def runtime_dir(corral_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh runtime directory (not yet created: the daemon creates it), exported as CORRAL_RUNTIME_DIR,
    with autostart on; any daemon or heart still running in it at the end is stopped, or killed."""
    parent = Path(tempfile.mkdtemp(prefix="crl-", dir="/tmp"))
    directory = parent / "run"
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(directory))
    monkeypatch.setenv("CORRAL_AUTOSTART", "1")
    yield directory
    stop_everything(directory)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def client(runtime_dir: Path) -> DaemonClient:
    return DaemonClient(runtime_dir)


_daemons_of = daemons_of  # other test modules import it from here


def start(client: DaemonClient) -> int:
    """`corral daemon start`, which must succeed; returns the daemon's pid."""
    result = corral(Path("/"), "daemon", "start")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("corral daemon started (pid ")
    pong = client.ping()
    assert pong is not None
    return int(pong["pid"])


def foreground(runtime_dir: Path) -> subprocess.Popen[bytes]:
    """A daemon run in the foreground as our child, its log in a file; returned once it answers."""
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    log = open(runtime_dir / "foreground.log", "wb")  # noqa: SIM115 - closed when the child has it
    try:
        process = subprocess.Popen(DAEMON, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env())
    finally:
        log.close()
    client = DaemonClient(runtime_dir)
    wait_until(lambda: client.ping() is not None or process.poll() is not None, 20, "the daemon to answer")
    assert process.poll() is None, (runtime_dir / "foreground.log").read_text()
    return process


def log_text(runtime_dir: Path, name: str = "daemon.log") -> str:
    return (runtime_dir / name).read_text()


# --- start, status, stop --------------------------------------------------------------------------------


def test_start_status_stop(client: DaemonClient, runtime_dir: Path) -> None:
    pid = start(client)
    assert read_pid(runtime_dir / "daemon.pid") == pid
    (heart,) = hearts_of(runtime_dir)  # the daemon runs under its heart
    assert read_pid(runtime_dir / "heart.pid") == heart and daemons_of(runtime_dir) == [pid]

    result = corral(Path("/"), "daemon", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["pid"] == pid
    assert status["socket"] == str(runtime_dir / "daemon.sock")
    assert status["uptime_s"] >= 0 and status["started_at"].endswith("Z") and status["version"]
    assert status["repos"] == []
    children = status["supervision"]["children"]
    assert [(c["id"], c["state"]) for c in children] == [
        ("eventbus", "running"),
        ("signals", "running"),
        ("audit", "running"),
        ("projects", "running"),
    ]
    assert status["heart"]["supervised_by"] == "heart" and status["heart"]["running"] is True
    assert status["heart"]["pid"] == heart and status["heart"]["problem"] == ""
    assert status["heart"]["state"]["state"] == "running" and status["heart"]["state"]["daemon_pid"] == pid

    human = corral(Path("/"), "daemon", "status")
    assert human.returncode == 0
    assert human.stdout.startswith("corral daemon: running\n") and f"pid:         {pid}\n" in human.stdout
    assert f"heart:       pid {heart}, running; 0 restarts of the daemon" in human.stdout

    stopped = corral(Path("/"), "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"corral daemon stopped (pid {pid}), and its heart (pid {heart})\n"
    assert not (runtime_dir / "daemon.sock").exists()
    assert not pid_alive(pid) and not pid_alive(heart)
    assert daemons_of(runtime_dir) == [] and hearts_of(runtime_dir) == []  # neither is left, nor replaced
    assert read_pid(runtime_dir / "daemon.pid") is None  # emptied, not removed: see lock.py
    assert read_pid(runtime_dir / "heart.pid") is None
    assert "corral daemon stopped" in log_text(runtime_dir)

    after = corral(Path("/"), "daemon", "status", "--json")
    assert after.returncode == 1
    assert json.loads(after.stdout)["running"] is False
    assert json.loads(after.stdout)["heart"]["state"]["state"] == "stopped"
    assert corral(Path("/"), "daemon", "stop").stdout == "corral daemon is not running\n"


def test_a_second_start_says_already_running(client: DaemonClient, runtime_dir: Path) -> None:
    pid = start(client)
    again = corral(Path("/"), "daemon", "start")
    assert again.returncode == 0
    assert again.stdout.startswith(f"corral daemon already running (pid {pid})")

    second = subprocess.run(DAEMON, env=clean_env(), capture_output=True, text=True, timeout=20, check=False)
    assert second.returncode == 0
    assert second.stderr.strip() == f"corral daemon: already running (pid {pid})"
    assert client.ping() == {"pid": pid, "version": client.ping()["version"]}


_ENSURE = "from frontends.daemon import DaemonClient; print(DaemonClient().ensure_running()['pid'])"


def test_clients_starting_the_daemon_at_once_end_with_exactly_one(runtime_dir: Path) -> None:
    clients = [
        subprocess.Popen([sys.executable, "-c", _ENSURE], env=clean_env(), stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    pids = {int(c.communicate(timeout=30)[0]) for c in clients}
    assert all(c.returncode == 0 for c in clients)
    assert len(pids) == 1
    (pid,) = pids
    wait_until(lambda: daemons_of(runtime_dir) == [pid], 20, "the losing hearts to exit")
    wait_until(lambda: len(hearts_of(runtime_dir)) == 1, 20, "the losing hearts to exit")
    assert read_pid(runtime_dir / "daemon.pid") == pid
    assert read_pid(runtime_dir / "heart.pid") == hearts_of(runtime_dir)[0]


def test_after_kill_9_of_daemon_and_heart_the_stale_files_do_not_block_a_new_start(
    client: DaemonClient, runtime_dir: Path
) -> None:
    old = start(client)
    (old_heart,) = hearts_of(runtime_dir)
    kill_everything(runtime_dir)  # both at once: nothing is left to restart the other
    assert (runtime_dir / "daemon.sock").exists()  # stale: nobody listens
    assert read_pid(runtime_dir / "daemon.pid") == old and read_pid(runtime_dir / "heart.pid") == old_heart
    status = corral(Path("/"), "daemon", "status")
    assert status.returncode == 1 and status.stdout.startswith("corral daemon: not running")

    new = start(client)
    assert new != old
    assert read_pid(runtime_dir / "daemon.pid") == new
    assert hearts_of(runtime_dir) != [old_heart] and len(hearts_of(runtime_dir)) == 1


# --- signals --------------------------------------------------------------------------------------------


def test_sigterm_is_an_orderly_shutdown(runtime_dir: Path) -> None:
    process = foreground(runtime_dir)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert not (runtime_dir / "daemon.sock").exists()
    log = log_text(runtime_dir, "foreground.log")
    assert "orderly shutdown (SIGTERM)" in log and "corral daemon stopped" in log


def test_sighup_reloads_and_the_daemon_keeps_running(client: DaemonClient, runtime_dir: Path) -> None:
    process = foreground(runtime_dir)
    try:
        with client.events(timeout=10) as stream:
            process.send_signal(signal.SIGHUP)
            event = stream.next()
        assert event is not None and event["type"] == "daemon_reloaded" and event["source"] == "SIGHUP"
        assert client.ping() is not None and process.poll() is None
        assert "reload (SIGHUP)" in log_text(runtime_dir, "foreground.log")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


# --- the runtime directory ------------------------------------------------------------------------------


def test_the_socket_is_0600_and_the_runtime_dir_0700(client: DaemonClient, runtime_dir: Path) -> None:
    start(client)
    assert stat.S_IMODE(runtime_dir.stat().st_mode) == 0o700
    assert stat.S_ISSOCK((runtime_dir / "daemon.sock").stat().st_mode)
    assert stat.S_IMODE((runtime_dir / "daemon.sock").stat().st_mode) == 0o600
    assert stat.S_IMODE((runtime_dir / "daemon.pid").stat().st_mode) == 0o600


def test_a_runtime_dir_writable_by_others_is_refused(runtime_dir: Path) -> None:
    runtime_dir.mkdir()
    runtime_dir.chmod(0o777)
    result = corral(Path("/"), "daemon", "start")
    assert result.returncode == 1
    assert result.stderr == (
        f"corral: error: the corral runtime directory {runtime_dir} is writable by group or others "
        f"(mode 0777): another user could plant a socket in it; fix it with: chmod 700 {runtime_dir}\n"
    )
    assert list(runtime_dir.iterdir()) == []
    status = corral(Path("/"), "daemon", "status")
    assert status.returncode == 1 and "writable by group or others" in status.stderr


def test_a_daemon_that_cannot_start_is_reported_with_its_log(corral_home: Path, runtime_dir: Path) -> None:
    (corral_home / "corral.db").write_text("not a database")
    result = corral(Path("/"), "daemon", "start")
    assert result.returncode == 1
    assert result.stderr.startswith("corral: error: the corral daemon could not start (exit status 1: ")
    assert "is not a SQLite database" in result.stderr
    assert daemons_of(runtime_dir) == [] and hearts_of(runtime_dir) == []  # no heart retries in vain


# --- the API --------------------------------------------------------------------------------------------


def test_registering_repositories_through_the_api(
    client: DaemonClient, git_repo: Path, tmp_path: Path
) -> None:
    start(client)
    plain = tmp_path / "plain"
    plain.mkdir()
    status, body = client.request("POST", "/v1/repos", json={"path": str(plain)})
    assert status == 400
    assert body == {
        "error": f"{plain} is not inside a git repository (a project is a git work tree)",
        "detail": "",
    }
    assert client.request("POST", "/v1/repos", json={"path": "relative/dir"})[0] == 400

    status, body = client.request("POST", "/v1/repos", json={"path": str(git_repo / ".git" / "..")})
    assert status == 201
    assert body["name"] == git_repo.name and body["root"] == str(git_repo.resolve())
    assert client.request("POST", "/v1/repos", json={"path": str(git_repo)}) == (200, body)

    listed = corral(Path("/"), "daemon", "repos", "--json")
    assert json.loads(listed.stdout) == [body]
    table = corral(Path("/"), "daemon", "repos")
    assert table.stdout.splitlines()[1].split()[:2] == [git_repo.name, str(git_repo.resolve())]


def test_bad_requests_get_json_errors(client: DaemonClient) -> None:
    start(client)
    status, body = client.request("POST", "/v1/repos", json=None)
    assert status == 400 and body["error"].startswith("the request body is not valid JSON")
    status, body = client.request("POST", "/v1/repos", json={"path": 7})
    assert (status, body) == (
        400,
        {"error": "the request body does not fit: Expected `str`, got `int` - at `$.path`", "detail": ""},
    )
    status, body = client.request("POST", "/v1/repos", json={"path": "/", "extra": 1})
    assert status == 400 and "extra" in body["error"]
    assert client.request("GET", "/v1/nope") == (
        404,
        {"error": "no such route: GET /v1/nope", "detail": "see docs/api.md"},
    )
    status, body = client.request("DELETE", "/v1/repos")
    assert status == 405 and body["error"] == "/v1/repos does not take DELETE (it takes GET, HEAD, POST)"


def test_the_event_stream_delivers_events_and_ends_on_shutdown(
    client: DaemonClient, git_repo: Path, runtime_dir: Path
) -> None:
    pid = start(client)
    with client.events(timeout=10) as stream:
        assert client.request("POST", "/v1/repos", json={"path": str(git_repo)})[0] == 201
        event = stream.next()
        assert event is not None
        assert (event["type"], event["project"], event["root"]) == (
            "repo_registered",
            git_repo.name,
            str(git_repo.resolve()),
        )
        assert event["ts"] > 0

        began = time.monotonic()
        stopper = threading.Thread(target=client.shutdown, kwargs={"timeout": 20})
        stopper.start()
        rest = list(stream)
        ended_after = time.monotonic() - began
        stopper.join(30)
    assert [e["type"] for e in rest] == ["daemon_stopping"] and rest[0]["reason"] == "api"
    assert ended_after < 2.0  # at once, not after aiohttp's shutdown timeout
    wait_until(lambda: not pid_alive(pid), 20, "the daemon to exit")


def test_reload_reports_config_problems(client: DaemonClient, git_repo: Path) -> None:
    start(client)
    assert corral(git_repo, "task", "list").returncode == 0  # registers the repository
    (git_repo / ".corral").mkdir(exist_ok=True)
    (git_repo / ".corral" / "config.toml").write_text("[resources]\nnice = 'very'\n")
    result = corral(Path("/"), "daemon", "reload")
    assert result.returncode == 1
    assert result.stdout.startswith("reloaded: 1 repository re-read, 1 problem(s):\n")
    assert "config.toml: resources.nice" in result.stdout

    (git_repo / ".corral" / "config.toml").unlink()
    fine = corral(Path("/"), "daemon", "reload", "--json")
    assert fine.returncode == 0
    assert json.loads(fine.stdout) == {"source": "api", "repos": 1, "problems": []}


def test_reload_without_a_daemon_fails_and_repos_reads_the_store(runtime_dir: Path, git_repo: Path) -> None:
    result = corral(Path("/"), "daemon", "reload")
    assert result.returncode == 1
    assert "the corral daemon is not running" in result.stderr and "corral daemon start" in result.stderr
    assert corral(git_repo, "task", "list").returncode == 0
    listed = json.loads(corral(Path("/"), "daemon", "repos", "--json").stdout)
    assert [p["root"] for p in listed] == [str(git_repo.resolve())]
    assert not (runtime_dir / "daemon.sock").exists()  # listing did not start a daemon


# --- install and help -----------------------------------------------------------------------------------


def test_install_writes_the_user_unit_and_prints_how_to_enable_it(corral_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    result = corral(Path("/"), "daemon", "install", XDG_CONFIG_HOME=str(config), HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    unit = config / "systemd" / "user" / "corral.service"
    assert result.stdout == (
        f"wrote {unit}\nenable and start it with:\n"
        "  systemctl --user daemon-reload && systemctl --user enable --now corral\n"
    )
    text = unit.read_text()
    assert f"ExecStart={CORRAL} daemon start --foreground\n" in text
    assert "Restart=on-failure\n" in text and "KillMode=process\n" in text
    assert f"Environment=CORRAL_HOME={corral_home}\n" in text
    assert "WantedBy=default.target" in text
    again = corral(Path("/"), "daemon", "install", XDG_CONFIG_HOME=str(config), HOME=str(tmp_path))
    assert again.stdout.startswith(f"unchanged: {unit}\n")


@pytest.mark.parametrize("command", ["start", "stop", "restart", "status", "reload", "install", "repos"])
def test_every_daemon_command_has_help_with_examples(tmp_path: Path, command: str) -> None:
    result = corral(tmp_path, "daemon", command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: corral daemon {command}")
    assert "examples:" in result.stdout


_IMPORT_PROBE = """
import json, sys
from frontends.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("command", [["daemon", "status"], ["daemon", "repos"], ["daemon", "stop"]])
def test_daemon_client_commands_import_neither_aiohttp_nor_pykka(
    runtime_dir: Path, command: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *command],
        cwd="/",
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = set(json.loads(done.stdout.splitlines()[-1])["modules"])
    assert not {m for m in modules if m.split(".")[0] in ("aiohttp", "pykka", "blessed")}


# --- signals through the running daemon ------------------------------------------------------------------


def test_the_daemon_applies_an_emitted_signal_and_one_emitted_while_it_was_down(
    client: DaemonClient, git_repo: Path
) -> None:
    assert corral(git_repo, "task", "create", "fix-login").returncode == 0
    down = corral(git_repo, "signal", "emit", "plan_start", "fix-login", CORRAL_AUTOSTART="0")
    assert down.returncode == 0 and down.stderr == ""  # no daemon, and none started

    def status_of(task: str) -> str:
        out = corral(git_repo, "task", "show", task, "--json")
        return json.loads(out.stdout)["status"]

    assert status_of("fix-login") == "ready"  # nothing applies signals without a daemon
    start(client)
    wait_until(lambda: status_of("fix-login") == "planning", 20, "the pending signal applied at start")
    emitted = corral(git_repo, "signal", "emit", "planner_finished", "fix-login", CORRAL_MANAGED="1")
    assert emitted.returncode == 0, emitted.stderr
    wait_until(lambda: status_of("fix-login") == "ready", 20, "the poked signal applied")
    signals = json.loads(corral(git_repo, "signal", "list", "--json").stdout)
    assert [s["status"] for s in signals] == ["done", "done"]
    assert json.loads(corral(git_repo, "task", "show", "fix-login", "--json").stdout)["phase"] == "planned"
