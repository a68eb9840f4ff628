"""The wake-up channel: pokes that never fail, a listener that coalesces them, and a stale socket replaced."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.wake import (
    RUNTIME_DIR_ENV,
    WakeListener,
    ensure_runtime_dir,
    poke,
    runtime_dir,
    wake_socket_path,
)
from protocols.errors import ConflictError, CorralError
from tests.unit.actor_kit import wait_until


@pytest.fixture
def rt() -> Iterator[Path]:
    """A short private runtime directory (a Unix socket path is limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="corral-rt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.event.set()


# -- where ------------------------------------------------------------------------------------------------


def test_the_runtime_dir_is_the_override_then_xdg_then_tmp(rt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNTIME_DIR_ENV, "/somewhere/rt")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt))
    assert runtime_dir() == Path("/somewhere/rt")
    assert wake_socket_path() == Path("/somewhere/rt/wake.sock")
    monkeypatch.delenv(RUNTIME_DIR_ENV)
    assert runtime_dir() == rt / "corral"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt / "missing"))  # as the daemon does: only if it exists
    assert runtime_dir() == Path(f"/tmp/corral-{os.getuid()}")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert runtime_dir() == Path(f"/tmp/corral-{os.getuid()}")


def test_the_wake_socket_lives_next_to_the_daemons_control_socket(
    rt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = pytest.importorskip("frontends.daemon.paths")
    for env in ({"XDG_RUNTIME_DIR": str(rt)}, {RUNTIME_DIR_ENV: str(rt / "x")}, {}):
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
        monkeypatch.delenv(RUNTIME_DIR_ENV, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert wake_socket_path().parent == paths.RuntimePaths.resolve().socket.parent


def test_the_runtime_dir_is_created_private_and_tightened_if_too_open(rt: Path) -> None:
    made = ensure_runtime_dir(rt / "corral")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    os.chmod(made, 0o755)
    ensure_runtime_dir(made)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_runtime_dir_others_may_write_to_is_refused_with_the_fix(rt: Path) -> None:
    os.chmod(rt, 0o777)
    with pytest.raises(CorralError, match=f"fix it with: chmod 700 {rt}"):
        ensure_runtime_dir(rt)


def test_a_symlink_in_place_of_the_runtime_dir_is_refused(rt: Path) -> None:
    (rt / "elsewhere").mkdir()
    (rt / "corral").symlink_to(rt / "elsewhere")
    with pytest.raises(CorralError, match="is not a directory"):
        ensure_runtime_dir(rt / "corral")


# -- poke -------------------------------------------------------------------------------------------------


def test_a_poke_without_a_listener_does_nothing_and_never_raises(rt: Path) -> None:
    assert poke(rt / "wake.sock") is False  # no such file
    (rt / "wake.sock").write_text("")
    assert poke(rt / "wake.sock") is False  # not a socket
    assert poke(rt / "missing" / "wake.sock") is False
    assert poke("/" + "x" * 200) is False  # too long for a Unix socket


def test_a_poke_uses_the_runtime_dir_by_default(rt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNTIME_DIR_ENV, str(rt))
    counter = Counter()
    with WakeListener(counter) as listener:
        assert listener.path == rt / "wake.sock"
        assert poke() is True
        assert counter.event.wait(5)


def test_the_listener_calls_back_once_per_burst(rt: Path) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> None:
        calls.append(1)
        entered.set()
        release.wait(5)

    with WakeListener(slow, rt / "wake.sock") as listener:
        assert poke(listener.path)
        assert entered.wait(5)
        sent = sum(poke(listener.path) for _ in range(50))  # the queue holds a few; the rest are dropped
        assert sent >= 1
        release.set()
        wait_until(lambda: listener.statistics().pokes == 1 + sent, what="every queued poke read")
        assert len(calls) == 2  # the first poke, then everything queued while it ran
        assert listener.statistics().wakeups == 2


def test_a_failing_callback_does_not_stop_the_listener(rt: Path) -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("callback bug")

    with WakeListener(broken, rt / "wake.sock") as listener:
        poke(listener.path)
        wait_until(lambda: len(calls) == 1, what="the first call")
        poke(listener.path)
        wait_until(lambda: len(calls) == 2, what="the second call")
        assert listener.statistics().listening


# -- one listener, stale sockets --------------------------------------------------------------------------


def test_a_second_listener_is_refused_while_the_first_listens(rt: Path) -> None:
    with WakeListener(Counter(), rt / "wake.sock"), pytest.raises(ConflictError) as refused:
        WakeListener(Counter(), rt / "wake.sock").start()
    assert f"pid {os.getpid()}" in str(refused.value)


def test_close_removes_the_socket_and_lets_another_listener_start(rt: Path) -> None:
    first = WakeListener(Counter(), rt / "wake.sock").start()
    first.close()
    first.close()  # idempotent
    assert not (rt / "wake.sock").exists()
    assert not first.statistics().listening
    counter = Counter()
    with WakeListener(counter, rt / "wake.sock") as second:
        assert poke(second.path) and counter.event.wait(5)


LISTEN_AND_HANG = """
import sys, time
from pathlib import Path
from actors.wake import WakeListener
WakeListener(lambda: None, Path(sys.argv[1])).start()
print("listening", flush=True)
time.sleep(60)
"""


def test_the_socket_of_a_killed_daemon_is_replaced(rt: Path) -> None:
    path = rt / "wake.sock"
    daemon = subprocess.Popen(
        [sys.executable, "-c", LISTEN_AND_HANG, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert daemon.stdout is not None and daemon.stdout.readline() == "listening\n"
        with pytest.raises(ConflictError, match=f"pid {daemon.pid}"):
            WakeListener(Counter(), path).start()
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        if daemon.stdout is not None:
            daemon.stdout.close()
    assert stat.S_ISSOCK(path.lstat().st_mode)  # the dead daemon's socket is still there
    assert poke(path) is False  # and nobody reads it
    counter = Counter()
    with WakeListener(counter, path):
        assert poke(path) and counter.event.wait(5)


def test_a_path_too_long_for_a_socket_is_refused_with_what_to_do(rt: Path) -> None:
    deep = rt / ("d" * 100)
    with pytest.raises(CorralError, match=f"set {RUNTIME_DIR_ENV} to a shorter directory"):
        WakeListener(Counter(), deep / "wake.sock").start()
