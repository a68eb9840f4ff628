"""The outbox (idempotent by key) and the audit log."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from actors.clock import FakeClock, utc_stamp
from actors.store import Store
from protocols.errors import NotFoundError, UsageError
from protocols.records import Project


def test_the_same_key_twice_is_one_item(store: Store, project: Project) -> None:
    first = store.add_outbox(project.id, "spawn:t:planner", "spawn", task="t", payload='{"agent": "planner"}')
    again = store.add_outbox(project.id, "spawn:t:planner", "spawn", task="t", payload='{"agent": "other"}')
    assert again == first
    assert store.pending_outbox() == [first]
    assert store._conn.execute("SELECT count(*) FROM outbox").get == 1


def test_a_signal_applied_records_its_effect_once(store: Store, project: Project) -> None:
    store.create_task(project.id, "t")
    signal = store.emit_signal(project.id, "t", "plan_start")
    store.apply_next("w")
    key = f"signal:{signal.id}:enter_planning"
    assert store.add_outbox(project.id, key, "enter_planning").payload != ""  # the existing item, unchanged
    assert [item.key for item in store.pending_outbox()] == [key]


def test_complete_and_fail(store: Store, project: Project, clock: FakeClock) -> None:
    a = store.add_outbox(project.id, "a", "spawn")
    b = store.add_outbox(project.id, "b", "kill")
    c = store.add_outbox(project.id, "c", "push")
    clock.advance(2)
    store.complete_outbox(a.id)
    store.complete_outbox(a.id)  # idempotent
    store.fail_outbox(b.id, "tmux: no server running")
    assert store.pending_outbox() == [c]
    done, failed = store.get_outbox(a.id), store.get_outbox(b.id)
    assert (done.status, done.done_at, done.attempts) == ("done", utc_stamp(clock.now()), 1)
    assert (failed.status, failed.last_error, failed.attempts) == ("failed", "tmux: no server running", 1)
    with pytest.raises(NotFoundError, match="no outbox item with id 99"):
        store.complete_outbox(99)
    with pytest.raises(NotFoundError):
        store.fail_outbox(99, "x")


def test_pending_outbox_by_project_and_limit(store: Store, project: Project, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other = store.ensure_project(tmp_path / "other")
    mine = [store.add_outbox(project.id, f"k{i}", "spawn") for i in range(3)]
    store.add_outbox(other.id, "theirs", "spawn")
    assert store.pending_outbox(project_id=project.id) == mine
    assert store.pending_outbox(limit=2) == mine[:2]
    with pytest.raises(NotFoundError, match="no project with id 77"):
        store.add_outbox(77, "x", "spawn")


def test_record_and_list_audit(store: Store, project: Project, clock: FakeClock) -> None:
    store.record_audit(
        project.id,
        "agent_started",
        "planner started",
        task="t",
        instance="t-planner",
        wave=1,
        detail={"pid": 42},
    )
    store.record_audit(None, "daemon_started", "daemon started", level="warn")
    store.record_audit(project.id, "note", "about u", task="u")
    events = store.list_audit()
    assert [e.kind for e in events] == ["note", "daemon_started", "agent_started"]
    started = events[2]
    assert (started.project_id, started.task, started.instance, started.wave, started.level) == (
        project.id,
        "t",
        "t-planner",
        1,
        "info",
    )
    assert msgspec.json.decode(started.detail) == {"pid": 42}
    assert started.ts == utc_stamp(clock.now())
    assert events[1].project_id is None and events[1].detail == ""
    assert [e.kind for e in store.list_audit(project.id)] == ["note", "agent_started"]
    assert [e.kind for e in store.list_audit(project.id, task="t")] == ["agent_started"]
    assert [e.kind for e in store.list_audit(task="u")] == ["note"]
    assert len(store.list_audit(limit=1)) == 1
    with pytest.raises(UsageError, match='unknown audit level "loud"'):
        store.record_audit(project.id, "x", "y", level="loud")


def test_audit_for_a_missing_project(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no project with id 5"):
        store.record_audit(5, "x", "y")


def test_audit_rows_written_many_at_once_and_read_with_filters(store: Store, project: Project) -> None:
    from actors.store import AuditEntry

    store.record_audit_many(
        [
            AuditEntry(project_id=project.id, kind="instance_status", message="a ready", instance="a"),
            AuditEntry(
                project_id=project.id, kind="instance_status", message="b failed", instance="b", level="error"
            ),
            AuditEntry(kind="daemon_stopping", message="stopping"),
        ]
    )
    assert [e.message for e in store.list_audit(project.id, instance="b")] == ["b failed"]
    assert [e.message for e in store.list_audit(project.id, levels=("error",))] == ["b failed"]
    assert [e.message for e in store.list_audit()][:3] == ["stopping", "b failed", "a ready"]
    with pytest.raises(UsageError, match='unknown audit level "loud"'):
        store.record_audit_many([AuditEntry(kind="x", message="y", level="loud")])
