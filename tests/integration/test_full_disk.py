"""A full disk (issue 8 §5): CORRAL_HOME, the daemon's runtime directory and the repository on a 2 MiB tmpfs,
and an agent flooding output until nothing is left. The daemon must degrade and live: it counts what it drops,
refuses new signals with a clear "disk full" error, keeps its agents running, and recovers by itself when
space returns. A real daemon process, a real corral-sim agent on a PTY, a real tmpfs (root only: skipped,
with the reason, elsewhere).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frontends.daemon import DaemonClient
from frontends.daemon.lock import pid_alive, read_pid
from tests.conftest import git
from tests.disk_kit import SmallDisk, small_disk
from tests.integration.cli_kit import corral
from tests.unit.actor_kit import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SIM = str(Path(sys.executable).with_name("corral-sim"))


class Place:
    """Everything corral writes, on one small disk: the database, the runtime directory, the repository."""

    def __init__(self, disk: SmallDisk) -> None:
        self.disk = disk
        self.home = disk.path / "home"
        self.run = disk.path / "run"
        self.repo = disk.path / "repo"
        self.env = {"CORRAL_HOME": str(self.home), "CORRAL_RUNTIME_DIR": str(self.run)}

    def corral(self, *args: str) -> Any:
        return corral(self.repo, *args, **self.env)

    def status(self) -> dict[str, Any]:
        result = self.corral("daemon", "status", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def instance(self, title: str) -> dict[str, Any]:
        result = self.corral("instance", "show", title, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def free(self) -> None:
        """What a person does: remove the big file, and empty the agent logs (an open file's blocks come
        back only when it is truncated)."""
        self.disk.free()
        for log in (self.repo / ".corral" / "logs").glob("*.log*"):
            log.write_bytes(b"")


@pytest.fixture
def place(corral_home: Path) -> Iterator[Place]:
    parent = Path(tempfile.mkdtemp(prefix="crl-fd-", dir="/tmp"))  # short: the socket path has a limit
    with small_disk(parent / "d") as disk:
        where = Place(disk)
        where.repo.mkdir()
        git(where.repo, "init", "-q", "-b", "main")
        (where.repo / "README.md").write_text("# proj\n")
        git(where.repo, "add", "README.md")
        git(where.repo, "commit", "-q", "-m", "initial")
        try:
            yield where
        finally:
            pid = read_pid(where.run / "daemon.pid") if where.run.exists() else None
            if pid is not None and pid_alive(pid):
                DaemonClient(where.run).shutdown(timeout=20)
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            subprocess_kill_sims(where.repo)
    shutil.rmtree(parent, ignore_errors=True)


def subprocess_kill_sims(repo: Path) -> None:
    """Any corral-sim still running in `repo` (the daemon's stop ends its agents; this is a safety net)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry / "cwd").resolve() == repo and b"corral-sim" in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue


def test_a_full_disk_degrades_the_daemon_which_refuses_signals_keeps_agents_and_recovers(
    place: Place,
) -> None:
    started = place.corral("daemon", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    pid = place.status()["pid"]
    assert place.corral("task", "create", "t1").returncode == 0

    # An agent floods its output into its log, on the same disk, until the disk is full.
    flood = place.corral("instance", "start", "flooder", "--program", SIM, "--mode", "pty",
                         "--worktree", "none", "--prompt", "/flood 4")  # fmt: skip
    assert flood.returncode == 0, flood.stdout + flood.stderr
    wait_until(lambda: place.disk.free_bytes() < 64 * 1024, 60, "the flood to fill the disk")
    place.disk.fill()  # whatever the flood left

    # The daemon's writers fail: another agent's events cannot be recorded, and the daemon says so.
    other = place.corral("instance", "start", "second", "--program", SIM, "--mode", "pty",
                         "--worktree", "none", "--prompt", "/echo hello")  # fmt: skip
    assert other.returncode == 0, other.stdout + other.stderr

    def degraded() -> dict[str, Any] | None:
        writes = place.status()["writes"]
        return writes if any(p.startswith("audit: ") for p in writes["problems"]) else None

    writes = wait_until(degraded, 30, "the daemon to report that it cannot write the audit log")
    assert f"the disk holding {place.home} is full" in writes["problems"][0] and writes["since"]
    human = place.corral("daemon", "status").stdout
    assert re.search(r"^writes: +FAILING since .* UTC \(the daemon retries by itself\)$", human, re.M), human
    assert f"audit: cannot write the corral database {place.home / 'corral.db'}" in human

    # New signals are refused, with the reason and the directory (the last free pages of the -wal file may
    # take a few first: emit until the disk says no).
    for _ in range(50):
        emitted = place.corral("signal", "emit", "plan_start", "t1")
        if emitted.returncode != 0:
            break
    assert emitted.returncode == 1, emitted.stdout + emitted.stderr
    assert emitted.stderr.startswith("corral: error: cannot write the corral database")
    assert f"the disk holding {place.home} is full" in emitted.stderr and "Traceback" not in emitted.stderr
    code, body = DaemonClient(place.run).request(
        "POST", "/v1/repos/repo/signals", json={"task": "t1", "signal_type": "plan_start"}
    )
    assert code == 507, body  # Insufficient Storage
    assert f"the disk holding {place.home} is full" in body["error"]

    # The daemon lives: same process, no child of the root restarted; the agents run on.
    status = place.status()
    assert status["pid"] == pid
    children = {c["id"]: c for c in status["supervision"]["children"]}
    assert children["signals"]["generation"] == children["audit"]["generation"] == 1
    assert children["audit"]["state"] == "running"
    for title in ("flooder", "second"):
        assert place.instance(title)["status"] not in ("exited", "failed")

    # Space comes back: the daemon recovers by itself.
    place.free()
    wait_until(lambda: place.status()["writes"]["problems"] == [], 30, "the daemon to write again")
    assert re.search(r"^writes: +ok$", place.corral("daemon", "status").stdout, re.M)
    emitted = place.corral("signal", "emit", "implement_start", "t1")
    assert emitted.returncode == 0, emitted.stdout + emitted.stderr
    signal_id = emitted.stdout.split()[1]

    def applied() -> bool:
        listed = json.loads(place.corral("signal", "list", "--json").stdout)
        return any(str(s["id"]) == signal_id and s["status"] in ("done", "failed") for s in listed)

    wait_until(applied, 30, "the signal emitted after the recovery to be applied")
    audit = place.corral("audit", "--instance", "second", "--json")
    assert audit.returncode == 0, audit.stderr
    assert json.loads(audit.stdout), "the rows of the outage were written once space came back"
    assert place.status()["pid"] == pid
    log = (place.run / "daemon.log").read_text(errors="replace")
    assert "the audit log is written again" in log
