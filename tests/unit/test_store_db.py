"""Opening the store: where it lives, pragmas, migrations, and refusing files that are not ours."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

import actors.store
from actors.clock import FakeClock
from actors.store import SCHEMA_VERSION, Store, StoreStatistics, default_db_path
from actors.store.db import JOURNAL_SIZE_LIMIT
from actors.store.migrations import APPLICATION_ID, MIGRATIONS
from protocols.errors import StoreError

TABLES = {"projects", "topics", "tasks", "wave_tasks", "instances", "signals", "audit_events", "outbox"}


def tables(path: Path) -> set[str]:
    conn = apsw.Connection(str(path))
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    finally:
        conn.close()


def test_public_names_are_pinned() -> None:
    assert sorted(actors.store.__all__) == [
        "AuditEntry",
        "SCHEMA_VERSION",
        "Store",
        "StoreStatistics",
        "default_db_path",
    ]


def test_store_package_loads_without_pykka_aiohttp_or_blessed() -> None:
    code = (
        "import sys, actors.store\n"
        "bad = [m for m in ('pykka', 'aiohttp', 'blessed') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_default_path_prefers_corral_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "home" / "corral.db"


def test_default_path_falls_back_to_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CORRAL_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "xdg" / "corral" / "corral.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert default_db_path() == tmp_path / "me" / ".local" / "share" / "corral" / "corral.db"


def test_open_without_a_path_uses_corral_home(corral_home: Path) -> None:
    with Store.open() as store:
        assert store.path == corral_home / "corral.db"
    assert (corral_home / "corral.db").exists()


def test_open_creates_the_directory_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "corral" / "corral.db"
    with Store.open(path):
        pass
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_migrates_an_empty_file_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    with Store.open(path) as store:
        conn = store._conn
        assert conn.execute("PRAGMA user_version").get == SCHEMA_VERSION == len(MIGRATIONS)
        assert conn.execute("PRAGMA application_id").get == APPLICATION_ID
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert tables(path) >= TABLES


def test_connection_pragmas_are_set_explicitly(tmp_path: Path) -> None:
    with Store.open(tmp_path / "corral.db", busy_timeout_ms=1234) as store:
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").get == "wal"
        assert conn.execute("PRAGMA synchronous").get == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").get == 1
        assert conn.execute("PRAGMA busy_timeout").get == 1234


def test_reopening_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    with Store.open(path) as store:
        project = store.ensure_project(tmp_path)
        store.create_task(project.id, "keep-me")
    for _ in range(3):
        with Store.open(path) as store:
            assert [t.name for t in store.list_tasks(project.id)] == ["keep-me"]
            assert store._conn.execute("PRAGMA user_version").get == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    with Store.open(path) as store:
        store._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=rf"{path}.*schema version {SCHEMA_VERSION + 1}.*upgrade corral"):
        Store.open(path)


def test_a_garbage_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match=rf"{path} is not a SQLite database"):
        Store.open(path)


def test_someone_elses_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="not corral's"):
        Store.open(path)
    assert tables(path) == {"notes"}


def test_an_unwritable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the directory"):
        Store.open(blocker / "corral.db")


def test_a_failed_migration_leaves_the_old_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "corral.db"
    with Store.open(path):
        pass
    import actors.store.migrations as migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, "CREATE TABLE extra (x); SELECT nonsense;"))
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"cannot migrate {path} to schema version {SCHEMA_VERSION + 1}"):
        Store.open(path)
    assert "extra" not in tables(path)
    monkeypatch.undo()
    with Store.open(path) as store:
        assert store._conn.execute("PRAGMA user_version").get == SCHEMA_VERSION


def test_statistics_report_the_queue(tmp_path: Path) -> None:
    with Store.open(tmp_path / "corral.db", clock=FakeClock()) as store:
        project = store.ensure_project(tmp_path)
        store.create_task(project.id, "a")
        store.emit_signal(project.id, "a", "plan_start")
        store.emit_signal(project.id, "a", "planner_finished")
        store.claim_next("me")
        assert store.statistics() == StoreStatistics(str(store.path), SCHEMA_VERSION, 1, 1, 0)


def test_a_write_that_raises_leaves_no_transaction_open(tmp_path: Path) -> None:
    with Store.open(tmp_path / "corral.db") as store:
        with pytest.raises(RuntimeError), store._write():
            store._conn.execute("INSERT INTO projects (name, root, created_at) VALUES ('x', '/x', '')")
            raise RuntimeError("boom")
        assert not store._conn.in_transaction
        assert store.list_projects() == []


# -- the file: private, never silently replaced, checked when asked (issue 8 §5) ---------------------------


def _modes(path: Path) -> dict[str, int]:
    """The permission bits of the database and of its -wal and -shm files, by suffix."""
    found = {}
    for suffix in ("", "-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            found[suffix or "db"] = stat.S_IMODE(side.stat().st_mode)
    return found


def test_a_new_database_and_its_wal_and_shm_are_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    old = os.umask(0o022)
    try:
        with Store.open(path) as store:
            store.ensure_project(tmp_path)  # a write: the -wal and -shm exist while the store is open
            assert _modes(path) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        os.umask(old)


def test_a_database_others_can_read_is_tightened_and_the_log_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "corral.db"
    with Store.open(path):
        pass
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="corral.store"), Store.open(path) as store:
        store.ensure_project(tmp_path)
        assert set(_modes(path).values()) == {0o600}
    assert f"{path} was open to group or others (mode 0644): tightened to 0600" in caplog.text


def test_an_empty_database_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    path.touch()
    with pytest.raises(StoreError) as refused:
        Store.open(path)
    message = str(refused.value)
    assert f"the corral database {path} is an empty file (0 bytes)" in message
    assert f"mv {path} {path}.bad" in message and "CORRAL_HOME" in message
    assert path.stat().st_size == 0  # not turned into a new, empty database


def _damage(path: Path) -> None:
    """Overwrite one b-tree page in the middle of the file with garbage (the header page stays whole)."""
    page = 4096
    size = path.stat().st_size
    assert size >= 6 * page
    with open(path, "r+b") as handle:
        handle.seek(size // page // 2 * page)
        handle.write(bytes(range(256)) * (page // 256))


def test_a_damaged_database_is_refused_by_the_check_with_the_recovery_hint(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    with Store.open(path) as store:
        project = store.ensure_project(tmp_path)
        for n in range(400):
            store.create_task(project.id, f"task-{n}", content="x" * 500)
    _damage(path)
    with pytest.raises(StoreError) as refused:
        Store.open(path, check=True)
    message = str(refused.value)
    assert f"the corral database {path} is damaged" in message
    assert f"sqlite3 {path} .recover" in message and f"mv {path} {path}.bad" in message


def test_the_wal_is_trimmed_after_a_checkpoint(tmp_path: Path) -> None:
    with Store.open(tmp_path / "corral.db") as store:
        assert store._conn.execute("PRAGMA journal_size_limit").get == JOURNAL_SIZE_LIMIT > 0
