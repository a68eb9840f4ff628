"""Instances in the store: upsert keeps the creation stamp, status updates, listing order, deletion."""

from __future__ import annotations

import msgspec
import pytest

from actors.clock import FakeClock
from actors.store import Store
from protocols.errors import ConflictError, NotFoundError
from protocols.records import InstanceRecord, Project


def _record(project: Project, title: str = "fix-login", **fields: object) -> InstanceRecord:
    base = {
        "program": "claude",
        "mode": "tmux",
        "prompt": "Fix the login form",
        "branch": f"corral/{title}",
        "worktree_mode": "own",
        "worktree_path": f"/src/app/.worktrees/corral-{title}",
        "session": f"corral_repo_{title}",
        "resource_profile": "normal",
        "status": "loading",
    }
    base.update(fields)
    return InstanceRecord(project=project.name, title=title, **base)  # type: ignore[arg-type]


def test_upsert_inserts_then_replaces_the_row_keeping_created_at(
    store: Store, project: Project, clock: FakeClock
) -> None:
    first = store.upsert_instance(_record(project))
    assert first.title == "fix-login" and first.mode == "tmux" and first.pid is None
    assert first.created_at == first.updated_at != ""
    clock.advance(5)
    second = store.upsert_instance(
        _record(project, status="ready", pid=4242, restarts=1, sdk_session_id="s1")
    )
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert (second.status, second.pid, second.restarts, second.sdk_session_id) == ("ready", 4242, 1, "s1")
    assert store.list_instances() == [second]


def test_every_field_round_trips(store: Store, project: Project) -> None:
    record = _record(project, task="auth-flow", agent_type="coder", base_commit="abc123", reason="why")
    stored = store.upsert_instance(record)
    assert msgspec.structs.replace(stored, created_at="", updated_at="") == record


def test_set_instance_status_keeps_what_is_not_given(store: Store, project: Project) -> None:
    store.upsert_instance(_record(project, pid=10, sdk_session_id="conv-1"))
    assert store.set_instance_status(project.name, "fix-login", "waiting", "permission prompt", restarts=2)
    row = store.get_instance(project.name, "fix-login")
    assert (row.status, row.reason, row.restarts, row.pid, row.sdk_session_id) == (
        "waiting",
        "permission prompt",
        2,
        10,
        "conv-1",
    )
    store.set_instance_status(project.name, "fix-login", "exited", pid=None, sdk_session_id="conv-2")
    row = store.get_instance(project.name, "fix-login")
    assert (row.status, row.restarts, row.pid, row.sdk_session_id) == ("exited", 2, None, "conv-2")


def test_set_instance_status_of_an_unknown_title_writes_nothing(store: Store, project: Project) -> None:
    assert not store.set_instance_status(project.name, "nobody", "ready")
    assert store.list_instances() == []


def test_list_instances_per_project_in_creation_order(store: Store, project: Project, tmp_path) -> None:
    other_root = tmp_path / "other"
    other_root.mkdir()
    other = store.ensure_project(other_root)
    for title in ("b", "a", "c"):
        store.upsert_instance(_record(project, title))
    store.upsert_instance(_record(other, "z"))
    assert [r.title for r in store.list_instances(project.name)] == ["b", "a", "c"]
    assert [(r.project, r.title) for r in store.list_instances()] == [
        ("other", "z"),
        ("repo", "b"),
        ("repo", "a"),
        ("repo", "c"),
    ]


def test_delete_instance_forgets_it(store: Store, project: Project) -> None:
    store.upsert_instance(_record(project))
    assert store.delete_instance(project.name, "fix-login")
    assert not store.delete_instance(project.name, "fix-login")
    with pytest.raises(NotFoundError, match='no instance "fix-login" recorded in project repo'):
        store.get_instance(project.name, "fix-login")


def test_an_unknown_project_is_refused(store: Store) -> None:
    with pytest.raises(NotFoundError, match='no project named "ghost"'):
        store.upsert_instance(InstanceRecord(project="ghost", title="x"))


def test_a_record_with_created_at_replaces_the_old_rows(store: Store, project: Project) -> None:
    store.upsert_instance(_record(project, status="exited"))
    again = store.upsert_instance(_record(project, created_at="2030-01-01T00:00:00.000000Z"))
    assert again.created_at == "2030-01-01T00:00:00.000000Z"


def test_rename_instance_moves_the_row_and_keeps_everything_else(store: Store, project: Project) -> None:
    store.upsert_instance(_record(project, "old", status="ready", sdk_session_id="s-1"))
    store.upsert_instance(_record(project, "taken"))
    renamed = store.rename_instance(project.name, "old", "new")
    assert (renamed.title, renamed.session, renamed.branch) == ("new", "corral_repo_old", "corral/old")
    assert (renamed.status, renamed.sdk_session_id) == ("ready", "s-1")
    assert [r.title for r in store.list_instances(project.name)] == ["new", "taken"]
    with pytest.raises(ConflictError, match='instance "taken" already exists'):
        store.rename_instance(project.name, "new", "taken")
    with pytest.raises(NotFoundError, match='no instance "old"'):
        store.rename_instance(project.name, "old", "newer")
    assert [r.title for r in store.list_instances(project.name)] == ["new", "taken"]
