"""Projects and tasks: registration, CRUD, names, every transition, forced status, the topic rule."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from actors.clock import FakeClock, utc_stamp
from actors.store import Store
from protocols.errors import ConflictError, NotFoundError, TooLargeError, TransitionError, UsageError
from protocols.fsm import PHASE_PLANNED, TRANSITIONS, USER_ONLY, Event, Source, Status, shown_status
from protocols.records import Project, task_name

EVERY_TRANSITION = [(status, event) for status, row in TRANSITIONS.items() for event in row]
EVERY_REFUSAL = [(s, e) for s in Status for e in Event if e not in TRANSITIONS[s]]


# -- projects ------------------------------------------------------------------------------------------------


def test_ensure_project_registers_once_per_root(store: Store, project: Project) -> None:
    assert store.ensure_project(Path(project.root)) == project
    assert project.name == "repo"
    assert store.list_projects() == [project]


def test_a_second_root_with_the_same_basename_gets_a_suffix(store: Store, tmp_path: Path) -> None:
    names = []
    for parent in ("a", "b", "c"):
        root = tmp_path / parent / "app"
        root.mkdir(parents=True)
        names.append(store.ensure_project(root).name)
    assert names == ["app", "app-2", "app-3"]


def test_get_project_by_name_or_root(store: Store, project: Project) -> None:
    assert store.get_project("repo") == project
    assert store.get_project(project.root) == project
    with pytest.raises(NotFoundError, match='no project named "nope" \\(projects: repo\\)'):
        store.get_project("nope")


# -- names and CRUD ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "name"), [("auth-flow", "auth-flow"), ("v1.2_fix.md", "v1.2_fix"), (" x ", "x")]
)
def test_task_names_are_slugs(given: str, name: str) -> None:
    assert task_name(given) == name


@pytest.mark.parametrize("bad", ["", ".md", "-lead", "Upper", "sp ace", "a/b", "é", "x" * 101])
def test_bad_task_names_are_usage_errors(store: Store, project: Project, bad: str) -> None:
    with pytest.raises(UsageError, match="invalid task name"):
        store.create_task(project.id, bad)


def test_create_task_sets_defaults_stamp_and_audit(store: Store, project: Project, clock: FakeClock) -> None:
    task = store.create_task(project.id, "auth-flow.md", title="Auth flow", topic="auth", content="# Plan\n")
    now = utc_stamp(clock.now())
    assert (task.name, task.title, task.topic, task.content) == ("auth-flow", "Auth flow", "auth", "# Plan\n")
    assert (task.status, task.phase, task.branch, task.review_cycle) == ("ready", "", "corral/auth-flow", 0)
    assert task.created_at == task.updated_at == task.ready_at == now
    assert task.planning_at == task.done_at == task.cancelled_at == ""
    assert store.list_topics(project.id) == ["auth"]
    [event] = store.list_audit(project.id)
    assert (event.kind, event.task, event.level) == ("task_created", "auth-flow", "info")
    assert store.get_task(project.id, "auth-flow.md") == task


def test_create_task_twice_is_a_conflict(store: Store, project: Project) -> None:
    store.create_task(project.id, "a", branch="feature/a")
    with pytest.raises(ConflictError, match='a task named "a" already exists in project repo'):
        store.create_task(project.id, "a")
    assert store.get_task(project.id, "a").branch == "feature/a"


def test_create_task_in_a_missing_project(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no project with id 99"):
        store.create_task(99, "a")


def test_get_missing_task_names_task_and_project(store: Store, project: Project) -> None:
    with pytest.raises(NotFoundError, match='no task named "ghost" in project repo'):
        store.get_task(project.id, "ghost")


def test_list_tasks_filters(store: Store, project: Project) -> None:
    for name, topic in [("a", "auth"), ("b", ""), ("c", "auth"), ("d", "")]:
        store.create_task(project.id, name, topic=topic)
    store.transition_task(project.id, "b", "plan_start")
    store.transition_task(project.id, "b", "planner_finished")
    store.transition_task(project.id, "d", "cancel")
    assert [t.name for t in store.list_tasks(project.id)] == ["a", "b", "c"]
    assert [t.name for t in store.list_tasks(project.id, include_cancelled=True)] == ["a", "b", "c", "d"]
    assert [t.name for t in store.list_tasks(project.id, statuses=["planned"])] == ["b"]
    assert [t.name for t in store.list_tasks(project.id, statuses=["ready"])] == ["a", "b", "c"]
    assert [t.name for t in store.list_tasks(project.id, statuses=["cancelled", "planned"])] == ["b", "d"]
    assert [t.name for t in store.list_tasks(project.id, topic="auth")] == ["a", "c"]
    assert store.get_task(project.id, "b").display_status == "planned"
    with pytest.raises(UsageError, match='unknown status "bogus"'):
        store.list_tasks(project.id, statuses=["bogus"])


def test_update_content(store: Store, project: Project, clock: FakeClock) -> None:
    store.create_task(project.id, "a")
    clock.advance(5)
    task = store.update_content(project.id, "a", "new body")
    assert (task.content, task.updated_at) == ("new body", utc_stamp(clock.now()))
    assert store.list_audit(project.id, task="a")[0].kind == "task_content_updated"


def test_delete_task_cascades_to_wave_tasks_and_is_audited(store: Store, project: Project) -> None:
    task = store.create_task(project.id, "a")
    store.set_wave_tasks(task.id, [(1, 1, "one"), (1, 2, "two")])
    store.delete_task(project.id, "a")
    assert store.list_wave_tasks(task.id) == []
    assert store.list_audit(project.id)[0].kind == "task_deleted"
    with pytest.raises(NotFoundError):
        store.delete_task(project.id, "a")


# -- transitions ---------------------------------------------------------------------------------------------


def put(store: Store, project: Project, name: str, status: Status) -> None:
    store.set_status(project.id, name, status.value)


@pytest.mark.parametrize(("status", "event"), EVERY_TRANSITION, ids=lambda v: str(v))
def test_every_transition_writes_task_audit_and_outbox(
    store: Store, project: Project, clock: FakeClock, status: Status, event: Event
) -> None:
    store.create_task(project.id, "t")
    put(store, project, "t", status)
    before = store.get_task(project.id, "t")
    clock.advance(60)
    now = utc_stamp(clock.now())
    result = store.transition_task(project.id, "t", event, payload="the feedback")
    target = TRANSITIONS[status][event]
    task = result.task
    assert (result.transition.from_status, result.transition.to_status) == (status, target)
    assert task.status == target
    assert task.phase == (PHASE_PLANNED if event is Event.PLANNER_FINISHED else "")
    assert getattr(task, f"{target}_at") == now == task.updated_at
    feedback = event in (Event.REVIEW_CHANGES_REQUESTED, Event.VERIFY_FAILED)
    assert task.review_cycle == before.review_cycle + feedback
    assert task.latest_feedback == ("the feedback" if feedback else "")
    audit = store.list_audit(project.id, task="t")[0]
    assert (audit.kind, audit.level, audit.ts, audit.signal_id) == ("transition", "info", now, None)
    assert audit.message == f"t: {status} → {shown_status(target, task.phase)} ({event}, by user)"
    assert msgspec.json.decode(audit.detail) == {"body": "the feedback"}
    [item] = store.pending_outbox()
    assert (item.kind, item.task, item.key) == (f"enter_{target}", "t", f"audit:{audit.id}:enter_{target}")
    assert msgspec.json.decode(item.payload) == {
        "event": event.value,
        "from_status": status.value,
        "to_status": target.value,
        "phase": task.phase,
        "source": "user",
    }


@pytest.mark.parametrize(("status", "event"), EVERY_REFUSAL, ids=lambda v: str(v))
def test_a_refused_transition_writes_nothing(
    store: Store, project: Project, status: Status, event: Event
) -> None:
    store.create_task(project.id, "t")
    put(store, project, "t", status)
    before, audit_before = store.get_task(project.id, "t"), store.list_audit(project.id)
    with pytest.raises(
        TransitionError, match=f'event "{event}" does not apply to a task in status "{status}"'
    ):
        store.transition_task(project.id, "t", event)
    assert store.get_task(project.id, "t") == before
    assert store.list_audit(project.id) == audit_before
    assert store.pending_outbox() == []


@pytest.mark.parametrize("event", sorted(USER_ONLY))
def test_an_agent_may_not_send_user_only_events(store: Store, project: Project, event: Event) -> None:
    store.create_task(project.id, "t")
    with pytest.raises(TransitionError, match="user-only"):
        store.transition_task(project.id, "t", event, source=Source.AGENT)
    with pytest.raises(TransitionError, match="user-only"):
        store.transition_task(project.id, "t", event.value, source="agent")  # type: ignore[arg-type]


def test_transition_reads_event_aliases_and_json_payloads(store: Store, project: Project) -> None:
    store.create_task(project.id, "t")
    put(store, project, "t", Status.REVIEWING)
    task = store.transition_task(project.id, "t", "review-changes", payload='{"body": "fix it", "n": 1}').task
    assert (task.status, task.latest_feedback, task.review_cycle) == ("implementing", "fix it", 1)


def test_unknown_event_and_source_are_usage_errors(store: Store, project: Project) -> None:
    store.create_task(project.id, "t")
    with pytest.raises(UsageError, match='unknown event "fly"'):
        store.transition_task(project.id, "t", "fly")
    with pytest.raises(UsageError, match='unknown source "robot"'):
        store.transition_task(project.id, "t", "plan_start", source="robot")  # type: ignore[arg-type]


def test_set_status_force_is_audited_at_warn(store: Store, project: Project, clock: FakeClock) -> None:
    store.create_task(project.id, "t")
    clock.advance(1)
    task = store.set_status(project.id, "t", "planned", reason="plan was written by hand")
    assert (task.status, task.phase, task.display_status) == ("ready", "planned", "planned")
    task = store.set_status(project.id, "t", "verifying")
    assert (task.status, task.phase, task.verifying_at) == ("verifying", "", utc_stamp(clock.now()))
    forced = [e for e in store.list_audit(project.id) if e.kind == "status_forced"]
    assert [e.level for e in forced] == ["warn", "warn"]
    assert forced[1].message == "t: status forced ready → planned: plan was written by hand"
    assert forced[0].message == "t: status forced planned → verifying"
    assert msgspec.json.decode(forced[1].detail)["reason"] == "plan was written by hand"
    assert store.pending_outbox() == []
    with pytest.raises(UsageError, match='unknown status "nowhere"'):
        store.set_status(project.id, "t", "nowhere")


def test_only_one_task_per_topic_implements(store: Store, project: Project) -> None:
    for name in ("a", "b"):
        store.create_task(project.id, name, topic="auth")
    store.create_task(project.id, "free")
    store.transition_task(project.id, "a", "implement_start")
    with pytest.raises(ConflictError, match='task "a" of the same topic "auth" is implementing'):
        store.transition_task(project.id, "b", "implement_start")
    assert store.get_task(project.id, "b").status == "ready"
    store.transition_task(project.id, "free", "implement_start")  # no topic: no rule
    store.transition_task(project.id, "a", "implement_finished")
    assert store.transition_task(project.id, "b", "implement_start").task.status == "implementing"


def test_topic_rule_applies_to_review_changes_too(store: Store, project: Project) -> None:
    for name in ("a", "b"):
        store.create_task(project.id, name, topic="auth")
    put(store, project, "a", Status.REVIEWING)
    store.transition_task(project.id, "b", "implement_start")
    with pytest.raises(ConflictError, match='"b"'):
        store.transition_task(project.id, "a", "review_changes_requested")


def test_content_over_one_mib_is_refused_by_create_and_update_and_nothing_changes(
    store: Store, project: Project
) -> None:
    big = "é" * (512 * 1024 + 1)  # 1 MiB + 2 bytes of UTF-8, in fewer characters than that
    with pytest.raises(TooLargeError, match=r'the content of task "big" is 1.0 MiB \(1048578 bytes\)'):
        store.create_task(project.id, "big", content=big)
    store.create_task(project.id, "small", content="# Small\n")
    with pytest.raises(TooLargeError, match="over the cap of 1 MiB"):
        store.update_content(project.id, "small", big)
    assert [t.name for t in store.list_tasks(project.id)] == ["small"]
    assert store.get_task(project.id, "small").content == "# Small\n"
    assert store.list_task_summaries(project.id)[0].content_bytes == len("# Small\n")
