"""The daemon's files: where the runtime directory is, when it is refused, the pid lock, the systemd unit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import frontends.daemon
from frontends.daemon import AlreadyRunning, RuntimeDirError, RuntimePaths
from frontends.daemon.lock import PidLock, pid_alive, read_pid
from frontends.daemon.paths import MAX_SOCKET_PATH, default_runtime_dir
from frontends.daemon.systemd import render_unit, unit_path

# --- the runtime directory ------------------------------------------------------------------------------


def test_the_runtime_dir_is_the_override_then_xdg_then_tmp(tmp_path: Path) -> None:
    uid = os.getuid()
    assert default_runtime_dir({"CORRAL_RUNTIME_DIR": str(tmp_path / "x")}) == tmp_path / "x"
    assert default_runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "corral"
    assert default_runtime_dir({"XDG_RUNTIME_DIR": str(tmp_path / "missing")}) == Path(f"/tmp/corral-{uid}")
    assert default_runtime_dir({"XDG_RUNTIME_DIR": "relative"}) == Path(f"/tmp/corral-{uid}")
    assert default_runtime_dir({}) == Path(f"/tmp/corral-{uid}")


def test_the_files_live_in_the_runtime_dir(tmp_path: Path) -> None:
    paths = RuntimePaths.resolve(tmp_path)
    assert (paths.socket, paths.pid_file, paths.log_file) == (
        tmp_path / "daemon.sock",
        tmp_path / "daemon.pid",
        tmp_path / "daemon.log",
    )


def test_prepare_creates_the_dir_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        paths = RuntimePaths.resolve(tmp_path / "a" / "run").prepare()
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o702])
def test_a_dir_writable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(RuntimeDirError, match=rf"writable by group or others \(mode {mode:04o}\).*chmod 700"):
        RuntimePaths.resolve(directory).prepare()
    assert stat.S_IMODE(directory.stat().st_mode) == mode  # refused, not silently "fixed"


def test_a_dir_readable_by_others_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    directory.chmod(0o755)
    RuntimePaths.resolve(directory).prepare()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_file_in_place_of_the_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("")
    with pytest.raises(RuntimeDirError, match="is not a directory"):
        RuntimePaths.resolve(tmp_path / "run").prepare()


def test_a_dir_owned_by_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: directory.stat().st_uid + 1)
    with pytest.raises(RuntimeDirError, match=r"belongs to uid \d+, not to you"):
        RuntimePaths.resolve(directory).check()


def test_a_socket_path_too_long_for_bind_is_refused_up_front(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (MAX_SOCKET_PATH - len(str(tmp_path))))
    with pytest.raises(
        RuntimeDirError, match=r"bytes long, more than a Unix socket allows.*CORRAL_RUNTIME_DIR"
    ):
        RuntimePaths.resolve(deep).prepare()
    assert not deep.exists()


def test_a_missing_dir_passes_the_check(tmp_path: Path) -> None:
    RuntimePaths.resolve(tmp_path / "nothing").check()


# --- the pid lock ---------------------------------------------------------------------------------------


def test_the_pid_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    with PidLock.acquire(pid_file) as lock:
        assert lock.held and read_pid(pid_file) == os.getpid()
        assert stat.S_IMODE(pid_file.stat().st_mode) == 0o600
        with pytest.raises(AlreadyRunning, match=rf"already running \(pid {os.getpid()}\)"):
            PidLock.acquire(pid_file)
        assert read_pid(pid_file) == os.getpid()  # the refused attempt did not disturb it
    assert read_pid(pid_file) is None and pid_file.exists()  # emptied, never unlinked
    PidLock.acquire(pid_file).release()


def test_a_stale_pid_file_does_not_block(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    pid_file.write_text("999999\n")
    with PidLock.acquire(pid_file):
        assert read_pid(pid_file) == os.getpid()


def test_the_lock_is_not_inherited_by_children(tmp_path: Path) -> None:
    with PidLock.acquire(tmp_path / "daemon.pid") as lock:
        assert lock._fd is not None and not os.get_inheritable(lock._fd)


def test_read_pid_of_an_empty_or_garbled_file_is_none(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "missing") is None
    (tmp_path / "p").write_text("")
    assert read_pid(tmp_path / "p") is None
    (tmp_path / "p").write_text("12ab\n")
    assert read_pid(tmp_path / "p") is None


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(2**22 + 1)  # above pid_max's ceiling


def test_already_running_while_the_holder_starts() -> None:
    assert str(AlreadyRunning(None)) == "already running (starting)"


# --- the systemd unit -----------------------------------------------------------------------------------


def test_the_unit_runs_the_daemon_in_the_foreground_with_the_environment_it_needs() -> None:
    text = render_unit(
        ["/opt/my corral/bin/corral"],
        {"CORRAL_HOME": "/data/corral", "PATH": "/home/u/.local/bin:/usr/bin", "HOME": "/home/u"},
    )
    assert 'ExecStart="/opt/my corral/bin/corral" daemon start --foreground\n' in text
    assert "Environment=CORRAL_HOME=/data/corral\n" in text
    assert "Environment=PATH=/home/u/.local/bin:/usr/bin\n" in text
    assert "HOME" not in text.replace("CORRAL_HOME", "")
    assert "CORRAL_RUNTIME_DIR" not in text
    for line in ("Type=simple", "Restart=on-failure", "KillMode=process", "WantedBy=default.target"):
        assert f"\n{line}\n" in text


def test_the_unit_escapes_what_systemd_would_expand() -> None:
    text = render_unit(["/opt/50%/$bin/corral"], {})
    assert "ExecStart=/opt/50%%/$$bin/corral daemon start --foreground\n" in text


def test_the_unit_path_follows_xdg_config_home(tmp_path: Path) -> None:
    assert unit_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "systemd/user/corral.service"
    assert unit_path({}) == Path.home() / ".config/systemd/user/corral.service"


# --- the package ----------------------------------------------------------------------------------------


def test_the_public_names_are_pinned() -> None:
    assert sorted(frontends.daemon.__all__) == sorted(
        [
            "RUNTIME_ENV",
            "AlreadyRunning",
            "DaemonClient",
            "DaemonError",
            "DaemonNotRunning",
            "DaemonStartError",
            "EventStream",
            "RuntimeDirError",
            "RuntimePaths",
        ]
    )
