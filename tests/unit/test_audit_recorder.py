"""The AuditRecorder on a real supervision tree, event bus and SQLite file, with a FakeClock for backoff."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.audit import (
    AuditConfig,
    AuditFeed,
    AuditRecorder,
    AuditStatistics,
    GetAuditStatistics,
    audit_row,
)
from actors.clock import FakeClock
from actors.eventbus import EventBus
from actors.health import WriteHealth
from actors.store import Store
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    SupervisionEnv,
    SupervisionTree,
    SupervisorFlags,
    WhichChildren,
)
from protocols.errors import SupervisionError
from protocols.fsm import Event, Source
from protocols.messages import (
    DaemonReloaded,
    DaemonStopping,
    ExitReason,
    InstanceNote,
    InstanceStatusChanged,
    RepoRegistered,
    SignalProcessed,
    TaskCreated,
    TaskTransitioned,
)
from protocols.records import AuditEvent, Project
from tests.unit.actor_kit import Worker, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")

FLAGS = SupervisorFlags(max_restarts=20, period_s=5)
NO_JITTER = BackoffSpec(min_s=0.5, max_s=10.0, jitter=0.0)


class Rig:
    """A database with the project "app", and at most one recorder tree at a time."""

    def __init__(self, tmp_path: Path, trees: list[SupervisionTree]) -> None:
        self.clock = FakeClock()
        self.db = tmp_path / "corral.db"
        root = tmp_path / "app"
        root.mkdir()
        self.store = Store.open(self.db, clock=self.clock)  # the test's own connection
        self.project: Project = self.store.ensure_project(root)
        self.env = SupervisionEnv.create(self.clock, seed=5)
        self.feed = AuditFeed()
        self.trees = trees
        self.tree: SupervisionTree | None = None

    def start(
        self,
        *extra: ChildSpec,
        backoff: BackoffSpec | None = None,
        health: WriteHealth | None = None,
        **config: Any,
    ) -> SupervisionTree:
        children = [
            ChildSpec.worker("bus", EventBus),
            ChildSpec.worker(
                "audit",
                AuditRecorder,
                AuditConfig(**({"db_path": self.db} | config)),
                self.feed,
                health,
                backoff=backoff,
            ),
            *extra,
        ]
        self.tree = SupervisionTree.start(FLAGS, children, env=self.env)
        self.trees.append(self.tree)
        return self.tree

    def publish(self, event: Any) -> None:
        self.env.publish(event)

    def rows(self, kind: str = "") -> list[AuditEvent]:
        """Every audit row, oldest first (of `kind`, if given)."""
        rows = list(reversed(self.store.list_audit(limit=10_000)))
        return [r for r in rows if not kind or r.kind == kind]

    def wait_rows(self, kind: str, count: int = 1, match: str = "") -> list[AuditEvent]:
        def found() -> list[AuditEvent]:
            rows = [r for r in self.rows(kind) if match in r.message]
            return rows if len(rows) >= count else []

        return wait_until(found, what=f"{count} {kind} row(s) matching {match!r}; have {self.rows()}")

    def marker(self, text: str) -> None:
        """Publish a DaemonStopping and wait for its row: everything published before it is recorded."""
        self.publish(DaemonStopping(reason=text))
        self.wait_rows("daemon_stopping", match=text)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path, trees: list[SupervisionTree]) -> Iterator[Rig]:
    rig = Rig(tmp_path, trees)
    yield rig
    rig.close()


def stats(tree: SupervisionTree) -> AuditStatistics:
    return tree.ask(GetAuditStatistics(), path="root/audit")


# -- supervision events -----------------------------------------------------------------------------------


def test_starts_are_recorded_including_the_recorders_own(rig: Rig) -> None:
    rig.start(ChildSpec.worker("w", Worker))
    rig.wait_rows("child_started", match="root/w started")
    # The bus's own start is published before the recorder subscribes, but the bus delivers it later: under
    # load it may arrive after the subscription. What matters is that the recorder's own start is there.
    rows = [r for r in rig.rows("child_started") if r.message != "root/bus started"]
    assert [(r.message, r.level, r.project_id) for r in rows] == [
        ("root/audit started", "info", None),
        ("root/w started", "info", None),
    ]
    assert json.loads(rows[1].detail)["type"] == "child_started"


def test_a_crash_gives_an_exit_row_and_a_restart_row_with_the_reason_and_the_backoff(rig: Rig) -> None:
    tree = rig.start(ChildSpec.worker("w", Worker, backoff=NO_JITTER))
    rig.env.directory.tell("root/w", "crash")
    exited = rig.wait_rows("child_exited", match="root/w")[0]
    assert exited.level == "warn"
    assert exited.message == "root/w exited: RuntimeError: w crashed on purpose; restarting"
    restarting = rig.wait_rows("child_restarting")[0]
    assert restarting.level == "warn"
    assert restarting.message == "root/w restarting in 0.5 s (attempt 1): RuntimeError: w crashed on purpose"
    detail = json.loads(restarting.detail)
    assert (detail["delay_s"], detail["attempt"], detail["reason"]["error_type"]) == (0.5, 1, "RuntimeError")

    rig.clock.advance(0.5)
    wait_until(lambda: {c.id: c.generation for c in tree.ask(WhichChildren())}["w"] == 2, what="restart")
    assert rig.wait_rows("child_started", match="root/w restarted")


def test_a_child_under_a_project_and_an_instance_path_is_recorded_with_both(rig: Rig) -> None:
    instance = ChildSpec.supervisor(
        "instance:fix-login-coder", FLAGS, [ChildSpec.worker("runtime", Worker, backoff=NO_JITTER)]
    )
    rig.start(ChildSpec.supervisor("project:app", FLAGS, [instance]))
    rig.env.directory.tell("root/project:app/instance:fix-login-coder/runtime", "exit-error")
    row = rig.wait_rows("child_exited", match="runtime")[0]
    assert (row.project_id, row.instance, row.task, row.level) == (
        rig.project.id,
        "fix-login-coder",
        "",
        "warn",
    )
    assert row.message == "runtime of fix-login-coder exited: exit status 137; restarting"
    restart = rig.wait_rows("child_restarting")[0]
    assert restart.message == "runtime of fix-login-coder restarting in 0.5 s (attempt 1): exit status 137"


def test_a_failed_start_is_an_error_row(rig: Rig) -> None:
    tree = rig.start()
    with pytest.raises(SupervisionError):
        tree.start_child(ChildSpec.worker("broken", Worker, fail_start=True))
    row = rig.wait_rows("child_start_failed")[0]
    assert row.level == "error"
    assert row.message == "root/broken failed to start: RuntimeError: broken cannot start"


def test_a_supervisor_that_gives_up_is_recorded_with_its_escalation(rig: Rig) -> None:
    sub = ChildSpec.supervisor(
        "sub", SupervisorFlags(max_restarts=0, period_s=5), [ChildSpec.worker("w", Worker)], backoff=NO_JITTER
    )
    rig.start(sub)
    rig.env.directory.tell("root/sub/w", "crash")
    gave_up = rig.wait_rows("supervisor_gave_up")[0]
    assert gave_up.level == "error"
    assert (
        gave_up.message
        == "root/sub gave up: 1 restarts within 5 s; last: w: RuntimeError: w crashed on purpose"
    )
    escalated = rig.wait_rows("supervisor_escalated")[0]
    assert escalated.level == "error"
    assert escalated.message == "root/sub shut down past its restart intensity, escalated to root"


# -- instance and daemon events ---------------------------------------------------------------------------


def test_instance_status_levels_follow_the_status_and_the_project_is_resolved(rig: Rig) -> None:
    rig.start()
    for status, previous, project in (
        ("running", "loading", "app"),
        ("waiting", "running", "app"),
        ("failed", "waiting", "ghost"),
    ):
        rig.publish(
            InstanceStatusChanged(
                project=project, instance="fix-login-coder", status=status, previous=previous, reason="why"
            )
        )
    rows = rig.wait_rows("instance_status", 3)
    assert [(r.level, r.project_id, r.instance, r.message) for r in rows] == [
        ("info", rig.project.id, "fix-login-coder", "fix-login-coder: loading → running: why"),
        ("warn", rig.project.id, "fix-login-coder", "fix-login-coder: running → waiting: why"),
        ("error", None, "fix-login-coder", "fix-login-coder: waiting → failed: why"),
    ]


def test_an_instance_note_keeps_its_level(rig: Rig) -> None:
    rig.start()
    rig.publish(InstanceNote(project="app", instance="coder", message="sdk unavailable: tmux", level="warn"))
    row = rig.wait_rows("instance_note")[0]
    assert (row.level, row.project_id, row.instance, row.message) == (
        "warn",
        rig.project.id,
        "coder",
        "coder: sdk unavailable: tmux",
    )


def test_daemon_events_are_recorded_and_a_reload_with_problems_is_a_warning(rig: Rig) -> None:
    rig.start()
    rig.publish(RepoRegistered(project="app", root="/src/app"))
    rig.publish(DaemonReloaded(source="SIGHUP", repos=1))
    rig.publish(DaemonReloaded(source="api", repos=2, problems=("a.toml: bad key", "b.toml: bad value")))
    rig.marker("SIGTERM")
    assert [(r.kind, r.level, r.project_id, r.message) for r in rig.rows() if r.kind != "child_started"] == [
        ("repo_registered", "info", rig.project.id, "repository /src/app registered as project app"),
        ("daemon_reloaded", "info", None, "configuration reloaded (SIGHUP): 1 repository, no problems"),
        (
            "daemon_reloaded",
            "warn",
            None,
            "configuration reloaded (api): 2 repositories, 2 problem(s): a.toml: bad key; b.toml: bad value",
        ),
        ("daemon_stopping", "info", None, "daemon stopping (SIGTERM)"),
    ]


def test_rows_are_stamped_with_the_time_of_the_event(rig: Rig) -> None:
    rig.start()
    rig.publish(DaemonStopping(reason="api", ts=1_800_000_000.25))
    assert rig.wait_rows("daemon_stopping")[0].ts == "2027-01-15T08:00:00.250000Z"


# -- what is not recorded here, and what goes wrong -------------------------------------------------------


def test_task_and_signal_events_are_not_recorded_twice(rig: Rig) -> None:
    rig.start()
    rig.store.create_task(rig.project.id, "fix-login")
    rig.store.transition_task(rig.project.id, "fix-login", Event.PLAN_START, source=Source.USER)
    before = [(r.kind, r.task) for r in rig.rows() if r.task]
    rig.publish(TaskCreated(project="app", task="fix-login", status="ready"))
    rig.publish(
        TaskTransitioned(
            project="app", task="fix-login", from_status="ready", event="plan_start", to_status="planning",
            source="user",
        )
    )  # fmt: skip
    rig.publish(
        SignalProcessed(
            project="app", task="fix-login", signal_id=1, signal_type="plan_start", status="done", result="ok"
        )
    )
    rig.marker("end")
    assert before == [("task_created", "fix-login"), ("transition", "fix-login")]
    assert [(r.kind, r.task) for r in rig.rows() if r.task] == before


def test_an_event_that_cannot_be_described_is_skipped_without_a_crash(rig: Rig) -> None:
    tree = rig.start()
    rig.publish(InstanceNote(project="app", instance="x", message=object()))  # type: ignore[arg-type]
    rig.publish(msgspec.Struct())  # not an event at all
    rig.marker("after")
    assert stats(tree).skipped == 1
    assert {c.id: c.generation for c in tree.ask(WhichChildren())}["audit"] == 1
    assert rig.rows("instance_note") == []


def test_a_queue_that_overflowed_becomes_a_warn_row(rig: Rig) -> None:
    assert rig.env.hub is not None
    # Subscribed before the recorder runs, on a queue of 2: the first drain finds a Lagged marker.
    rig.feed.subscription = rig.env.hub.subscribe(maxsize=2, on_ready=rig.feed.ready)
    for i in range(5):
        rig.env.hub.fan_out(InstanceNote(project="app", instance=f"i{i}", message="hello"))
    rig.start()
    row = rig.wait_rows("audit_lagged")[0]
    assert row.level == "warn"
    match = re.fullmatch(r"audit lost (\d+) events \(the recorder fell behind\)", row.message)
    assert match is not None and int(match.group(1)) >= 3


def test_a_store_error_degrades_the_recorder_instead_of_crashing_it_and_it_catches_up(rig: Rig) -> None:
    health = WriteHealth()
    tree = rig.start(health=health, backoff=NO_JITTER, busy_timeout_ms=50, retry_s=5.0)
    rig.marker("ready")
    rig.store._conn.execute("BEGIN IMMEDIATE")  # hold the write lock: the recorder's commits time out
    try:
        rig.publish(DaemonReloaded(source="SIGHUP", repos=1))
        wait_until(lambda: stats(tree).failing, what="the recorder to see the store fail")
        rig.publish(InstanceNote(project="app", instance="coder", message="while it could not write"))
        wait_until(lambda: stats(tree).waiting == 2, what="both rows kept")
        view = health.view()
        assert view.problems[0].startswith("audit: cannot write the corral database") and view.since
        rig.clock.advance(5.0)  # a retry while the fault lasts: still failing, nothing lost
        wait_until(lambda: stats(tree).waiting == 2 and stats(tree).failing, what="a failed retry")
    finally:
        rig.store._conn.execute("ROLLBACK")
    rig.clock.advance(5.0)
    assert rig.wait_rows("instance_note", match="while it could not write")
    assert rig.rows("daemon_reloaded")
    assert not stats(tree).failing and health.view().ok
    assert {c.id: c.generation for c in tree.ask(WhichChildren())}["audit"] == 1  # never restarted
    assert rig.rows("child_exited") == [] and rig.rows("audit_dropped") == []


def test_a_recorder_that_cannot_open_the_store_starts_degraded_and_writes_once_it_can(
    rig: Rig, tmp_path: Path
) -> None:
    db = tmp_path / "later" / "corral.db"
    db.parent.mkdir()
    db.touch()  # an empty file: refused (corral never leaves one) until someone moves it away
    health = WriteHealth()
    tree = rig.start(health=health, db_path=db, retry_s=5.0)
    wait_until(lambda: stats(tree).failing, what="the recorder to start degraded")
    assert "is an empty file (0 bytes)" in health.view().problems[0]
    rig.publish(InstanceNote(project="", instance="coder", message="kept while the store was away"))
    wait_until(lambda: stats(tree).waiting >= 1, what="the note kept")
    db.unlink()
    rig.clock.advance(5.0)
    wait_until(lambda: health.view().ok, what="the recorder to open the store and write")
    with Store.open(db) as store:
        assert "coder: kept while the store was away" in [e.message for e in store.list_audit(limit=100)]
    assert {c.id: c.generation for c in tree.ask(WhichChildren())}["audit"] == 1


def test_past_its_backlog_the_degraded_recorder_drops_the_oldest_rows_and_says_how_many(rig: Rig) -> None:
    health = WriteHealth()
    tree = rig.start(health=health, busy_timeout_ms=50, retry_s=5.0, backlog=3)
    rig.marker("ready")
    rig.store._conn.execute("BEGIN IMMEDIATE")
    try:
        for n in range(8):
            rig.publish(InstanceNote(project="app", instance="coder", message=f"note {n}"))
        wait_until(lambda: stats(tree).failing and stats(tree).dropped == 5, what="5 rows dropped")
        assert health.view().audit_rows_dropped == 5
    finally:
        rig.store._conn.execute("ROLLBACK")
    rig.clock.advance(5.0)
    dropped = rig.wait_rows("audit_dropped")[0]
    assert dropped.level == "warn"
    assert dropped.message.startswith("audit dropped 5 rows while the database could not be written: cannot ")
    assert [r.message for r in rig.rows("instance_note")] == [
        "coder: note 5",
        "coder: note 6",
        "coder: note 7",
    ]


def test_audit_row_is_none_for_events_the_store_records_itself() -> None:
    event = TaskTransitioned(
        project="app", task="t", from_status="ready", event="plan_start", to_status="planning", source="user"
    )
    assert audit_row(event) is None
    assert audit_row("not an event") is None


def test_audit_row_names_the_root_children_by_path_and_others_by_their_owner() -> None:
    from protocols.messages import ChildExited

    reason = ExitReason.error("AgentKilled", "killed by SIGKILL")
    row = audit_row(
        ChildExited(
            supervisor="root/project:app/task:fix-login/wave:2/instance:coder",
            child_id="runtime",
            generation=3,
            reason=reason,
            restart_type="transient",
        )
    )
    assert row is not None
    assert (row.project, row.task, row.wave, row.instance, row.level) == (
        "app",
        "fix-login",
        2,
        "coder",
        "error",
    )
    assert row.message == "runtime of coder exited: killed by SIGKILL; not restarted (restart transient)"


def test_under_a_project_the_next_segment_is_the_instance() -> None:
    from protocols.messages import ChildExited, ChildStarted

    exited = audit_row(
        ChildExited(
            supervisor="root/project:app/fix-login",
            child_id="runtime",
            generation=1,
            reason=ExitReason.error("AgentExited", "exit status 137"),
            restarting=True,
        )
    )
    assert exited is not None
    assert (exited.project, exited.instance) == ("app", "fix-login")
    assert exited.message == "runtime of fix-login exited: exit status 137; restarting"
    started = audit_row(ChildStarted(supervisor="root/project:app", child_id="fix-login", generation=1))
    assert started is not None
    assert (started.project, started.instance, started.message) == (
        "app",
        "fix-login",
        "fix-login of app started",
    )
    root_child = audit_row(ChildStarted(supervisor="root", child_id="project:app", generation=1))
    assert root_child is not None
    assert (root_child.project, root_child.instance) == ("app", "")


def test_a_supervisor_shut_down_past_its_intensity_is_recorded_with_the_cause(rig: Rig) -> None:
    sub = ChildSpec.supervisor(
        "sub", SupervisorFlags(max_restarts=0, period_s=5), [ChildSpec.worker("w", Worker)], backoff=NO_JITTER
    )
    rig.start(sub)
    rig.env.directory.tell("root/sub/w", "crash")
    row = rig.wait_rows("child_exited", match="root/sub shut down")[0]
    assert row.level == "warn"
    assert row.message.startswith("root/sub shut down: root/sub gave up: 1 restarts within 5 s")
    assert row.message.endswith("; restarting")  # permanent: its parent restarts it, as OTP's would
