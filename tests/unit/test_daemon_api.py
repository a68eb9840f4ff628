"""The control API and its server in this process, in front of a stand-in daemon: errors, time-outs, the
event stream's lag markers, disconnects and shutdown. (tests/integration/test_daemon.py runs the real one.)"""

from __future__ import annotations

import concurrent.futures
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.eventbus import EventHub
from frontends.daemon import DaemonClient, DaemonError
from frontends.daemon import http as http_module
from frontends.daemon.api import DaemonInfo, make_app
from frontends.daemon.schema import ReloadReport
from frontends.daemon.server import ControlServer
from protocols.errors import ConflictError
from protocols.health import WriteFaults
from protocols.heart import HeartReport
from protocols.messages import TaskCreated
from protocols.records import Project
from tests.unit.actor_kit import wait_until


def _done(value: Any) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_result(value)
    return future


def _failed(exc: BaseException) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_exception(exc)
    return future


class FakeDaemon:
    """A DaemonControl whose answers a test chooses."""

    def __init__(self, socket_path: Path) -> None:
        self.info = DaemonInfo(
            pid=4242, version="9.9", started_at="2026-01-01T00:00:00.000000Z", socket=str(socket_path),
            runtime_dir=str(socket_path.parent), database="/nowhere/corral.db",
        )  # fmt: skip
        self.hub = EventHub()
        self.projects: concurrent.futures.Future[list[Project]] = _done([])
        self.stats: concurrent.futures.Future[Any] = _failed(TimeoutError())
        self.stops: list[str] = []

    def uptime_s(self) -> float:
        return 1.5

    def write_faults(self) -> WriteFaults:
        return WriteFaults()

    def heart(self) -> HeartReport:
        return HeartReport(supervised_by="foreground", running=False, pid=None, state=None)

    def supervision(self) -> concurrent.futures.Future[Any]:
        return self.stats

    def list_projects(self) -> concurrent.futures.Future[list[Project]]:
        return self.projects

    def register_project(self, path: str) -> concurrent.futures.Future[tuple[Project, bool]]:
        if path == "/explode":
            return _failed(RuntimeError("kaboom"))
        if path == "/taken":
            return _failed(ConflictError("that name is taken"))
        return _done((Project(1, "p", path, "2026-01-01T00:00:00.000000Z"), True))

    def request_reload(self, source: str) -> concurrent.futures.Future[ReloadReport]:
        return _done(ReloadReport(source=source, repos=0))

    def request_stop(self, reason: str) -> None:
        self.stops.append(reason)


@pytest.fixture
def runtime() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="crl-u-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def served(runtime: Path) -> Iterator[tuple[FakeDaemon, ControlServer, DaemonClient]]:
    daemon = FakeDaemon(runtime / "daemon.sock")
    server = ControlServer(make_app(daemon), runtime / "daemon.sock", shutdown_timeout_s=5.0)
    server.start()
    try:
        yield daemon, server, DaemonClient(runtime)
    finally:
        server.stop()


def test_the_socket_appears_listening_with_mode_0600_and_goes_on_stop(runtime: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(runtime / "daemon.sock"))  # what a killed daemon leaves: a socket nobody accepts on
    stale.close()
    daemon = FakeDaemon(runtime / "daemon.sock")
    server = ControlServer(make_app(daemon), runtime / "daemon.sock")
    server.start()
    try:
        assert stat.S_IMODE((runtime / "daemon.sock").stat().st_mode) == 0o600
        assert DaemonClient(runtime).ping() == {"pid": 4242, "version": "9.9"}
        assert [p.name for p in runtime.iterdir()] == ["daemon.sock"]  # no temporary name left
    finally:
        server.stop()
    assert list(runtime.iterdir()) == []
    assert not server.alive


def test_status_answers_without_supervision_when_the_root_times_out(served: Any) -> None:
    _, _, client = served
    status = client.call("GET", "/v1/status")
    assert status["supervision"] is None
    assert (status["pid"], status["uptime_s"], status["repos"]) == (4242, 1.5, [])


def test_a_bug_is_a_500_with_its_message_and_a_log_line(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, client = served
    status, body = client.request("POST", "/v1/repos", json={"path": "/explode"})
    assert status == 500
    assert body["error"] == "internal error: RuntimeError: kaboom (a bug in corral; see the daemon's log)"
    assert body["detail"] == "POST /v1/repos raised RuntimeError; the traceback is in the log"
    assert "POST /v1/repos: unexpected error" in caplog.text


def test_corral_errors_map_to_their_status(served: Any) -> None:
    _, _, client = served
    assert client.request("POST", "/v1/repos", json={"path": "/taken"}) == (
        409,
        {"error": "that name is taken", "detail": ""},
    )
    assert client.request("POST", "/v1/repos", json={"path": "/ok"})[0] == 201


def test_a_daemon_that_does_not_answer_in_time_is_a_503(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon, _, client = served
    daemon.projects = concurrent.futures.Future()  # never completes
    monkeypatch.setattr(http_module, "ANSWER_TIMEOUT_S", 0.05)
    status, body = client.request("GET", "/v1/repos")
    assert status == 503 and body["error"].startswith("the daemon did not answer within 0.05 s")
    assert client.ping() is not None  # the loop was never blocked


def test_an_oversized_body_is_a_413_json_error(served: Any) -> None:
    _, _, client = served
    status, body = client.request("POST", "/v1/repos", json={"path": "x" * (2 * 1024 * 1024)})
    assert status == 413 and "body size" in body["error"]


def test_shutdown_and_reload_are_passed_to_the_daemon(served: Any) -> None:
    daemon, _, client = served
    assert client.request("POST", "/v1/shutdown") == (202, {"pid": 4242, "status": "stopping"})
    assert daemon.stops == ["api"]
    assert client.call("POST", "/v1/reload") == {"source": "api", "repos": 0, "problems": []}


def test_a_client_too_slow_for_the_stream_gets_a_lagged_marker(served: Any) -> None:
    daemon, server, client = served
    with client.events(timeout=10) as stream:
        release = threading.Event()
        server._loop.call_soon_threadsafe(release.wait, 10)  # hold the loop: nothing is taken from the queue
        for n in range(1500):
            daemon.hub.fan_out(TaskCreated(project="p", task=f"t{n}", status="ready"))
        release.set()
        first = stream.next()
        assert first == {"type": "lagged", "missed": 1500 - 1024, "ts": first["ts"]}
        tasks = [stream.next()["task"] for _ in range(1024)]
    assert tasks == [f"t{n}" for n in range(1500 - 1024, 1500)]


def test_a_vanished_client_lets_go_of_its_subscription(served: Any) -> None:
    daemon, _, client = served
    with client.events(timeout=10):
        assert daemon.hub.subscribers == 1

    def unsubscribed() -> bool:
        # The server notices a vanished client at its next write: an event here (else the keepalive).
        daemon.hub.fan_out(TaskCreated(project="p", task="t", status="ready"))
        return daemon.hub.subscribers == 0

    wait_until(unsubscribed, what="the stream's subscription to be closed")


def test_open_streams_end_at_once_when_the_server_stops(runtime: Path) -> None:
    daemon = FakeDaemon(runtime / "daemon.sock")
    server = ControlServer(make_app(daemon), runtime / "daemon.sock", shutdown_timeout_s=30.0)
    server.start()
    client = DaemonClient(runtime)
    try:
        with client.events(timeout=10) as one, client.events(timeout=10) as two:
            daemon.hub.fan_out(TaskCreated(project="p", task="last", status="ready"))
            began = time.monotonic()
            server.stop()
            assert [e["task"] for e in one] == ["last"]
            assert [e["task"] for e in two] == ["last"]
            assert time.monotonic() - began < 5.0  # not the 30 s shutdown timeout
    finally:
        server.stop()
    with pytest.raises(DaemonError, match="not running"):
        client.call("GET", "/v1/ping")
