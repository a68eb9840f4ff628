"""A database corral cannot trust is refused at start, by the CLI and by the daemon, with the way out —
never silently replaced by a new, empty one (issue 8 §5). Real files, the real `corral`, a real daemon."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.store import Store
from frontends.daemon import DaemonClient
from frontends.daemon.lock import pid_alive, read_pid
from tests.integration.cli_kit import corral, fails


@pytest.fixture
def runtime_dir(corral_home: Path) -> Iterator[Path]:
    """A runtime directory for a daemon (short: socket paths are limited); any daemon left is stopped."""
    parent = Path(tempfile.mkdtemp(prefix="crl-sf-", dir="/tmp"))
    directory = parent / "run"
    yield directory
    pid = read_pid(directory / "daemon.pid") if directory.exists() else None
    if DaemonClient(directory).ping() is not None:
        DaemonClient(directory).shutdown(timeout=20)
    if pid is not None and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(parent, ignore_errors=True)


def damaged_database(path: Path, repo: Path) -> None:
    """A corral database with a leaf page of the tasks table overwritten with garbage (the header page and
    the schema stay whole, so the file opens; reading the tasks fails)."""
    with Store.open(path) as store:
        project = store.ensure_project(repo)
        for n in range(400):
            store.create_task(project.id, f"task-{n}", content="x" * 500)
        store.checkpoint("TRUNCATE")  # every page in the file itself, none left in the -wal
        pages = [
            row[0]
            for row in store._conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'tasks' AND pagetype = 'leaf'"
            )
        ]
    with open(path, "r+b") as handle:
        handle.seek((pages[len(pages) // 2] - 1) * 4096)
        handle.write(bytes(range(256)) * 16)


def test_the_cli_refuses_an_empty_database_file_naming_it_and_the_way_out(
    corral_home: Path, git_repo: Path
) -> None:
    db = corral_home / "corral.db"
    db.touch()
    message = fails(git_repo, 1, "task", "list")
    assert message.startswith(f"the corral database {db} is an empty file (0 bytes)")
    assert f"mv {db} {db}.bad" in message and "CORRAL_HOME" in message
    assert db.stat().st_size == 0
    assert sorted(p.name for p in corral_home.iterdir()) == ["corral.db"]


def test_the_daemon_refuses_an_empty_database_file_at_start(corral_home: Path, runtime_dir: Path) -> None:
    db = corral_home / "corral.db"
    db.touch()
    result = corral(Path("/"), "daemon", "start", CORRAL_RUNTIME_DIR=str(runtime_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"the corral database {db} is an empty file (0 bytes)" in result.stderr
    assert "Traceback" not in result.stderr
    assert db.stat().st_size == 0


def test_the_daemon_refuses_a_damaged_database_at_start_with_the_recovery_hint(
    corral_home: Path, runtime_dir: Path, git_repo: Path
) -> None:
    db = corral_home / "corral.db"
    damaged_database(db, git_repo)
    result = corral(Path("/"), "daemon", "start", CORRAL_RUNTIME_DIR=str(runtime_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"the corral database {db} is damaged" in result.stderr
    assert f"sqlite3 {db} .recover" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_new_database_made_by_the_cli_is_private(corral_home: Path, git_repo: Path) -> None:
    old = os.umask(0o022)  # the usual umask, inherited by the command: files 0644 unless made private
    try:
        corral(git_repo, "task", "create", "first")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in corral_home.iterdir()}
    assert modes == {"corral.db": 0o600}


def test_a_command_that_reads_a_damaged_page_says_so_with_the_way_out_not_a_bug(
    corral_home: Path, git_repo: Path
) -> None:
    db = corral_home / "corral.db"
    damaged_database(db, git_repo)
    message = fails(git_repo, 1, "task", "list")
    assert message.startswith(f"the corral database {db} is damaged (")
    assert f"sqlite3 {db} .recover" in message and "a bug in corral" not in message
