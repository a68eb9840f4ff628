"""Tasks: create, read, list, edit, delete, move through the lifecycle, and force a status."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from actors.store.base import parse_source
from actors.store.lifecycle import LifecycleMixin
from actors.store.rows import (
    TASK_COLUMNS,
    TASK_FROM,
    TASK_SUMMARY_COLUMNS,
    WAVE_TASK_COLUMNS,
    summary_record,
    task_record,
)
from protocols.errors import ConflictError, NotFoundError, UsageError
from protocols.fsm import PHASE_PLANNED, Event, Source, Status, parse_event, parse_status
from protocols.records import (
    AuditLevel,
    Task,
    TaskSummary,
    TaskWaiting,
    TransitionResult,
    WaveTaskRecord,
    check_content_size,
    task_name,
)
from protocols.signals import SIGNAL_TYPES, Body, decode_payload, normalize_payload

__all__ = ["TasksMixin"]

_GET = f"SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.project_id = ? AND t.name = ?"
_EXISTS = "SELECT 1 FROM tasks WHERE project_id = ? AND name = ?"
_INSERT_TOPIC = "INSERT INTO topics (project_id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
_TOPIC_ID = "SELECT id FROM topics WHERE project_id = ? AND name = ?"
_INSERT = (
    "INSERT INTO tasks (project_id, name, title, status, topic_id, branch, content, created_at, updated_at, "
    "ready_at) VALUES (?, ?, ?, 'ready', ?, ?, ?, ?, ?, ?)"
)
_UPDATE_CONTENT = "UPDATE tasks SET content = ?, updated_at = ? WHERE project_id = ? AND name = ?"
_DELETE = "DELETE FROM tasks WHERE id = ?"
_TOPICS = "SELECT name FROM topics WHERE project_id = ? ORDER BY name"
_PROJECT_WAVE_TASKS = (
    f"SELECT {WAVE_TASK_COLUMNS} FROM wave_tasks w JOIN tasks t ON t.id = w.task_id "
    "WHERE t.project_id = ? ORDER BY w.task_id, w.wave_number, w.task_number"
)
_LIVE_STEPS = (
    "SELECT DISTINCT project_id FROM tasks "
    "WHERE status IN ('planning', 'implementing', 'reviewing', 'verifying')"
)
_FORCE = {
    status: (
        f"UPDATE tasks SET status = ?, phase = ?, {status.value}_at = ?, updated_at = ?, waiting = '' "
        "WHERE id = ?"
    )
    for status in Status
}
_GET_WAITING = {
    status: (
        "SELECT waiting FROM tasks WHERE project_id = ? AND name = ? AND status = ? "
        f"AND {status.value}_at = ?"
    )
    for status in Status
}
_SET_WAITING = "UPDATE tasks SET waiting = ? WHERE project_id = ? AND name = ?"
_decode_waiting = msgspec.json.Decoder(TaskWaiting)
_encode = msgspec.json.Encoder().encode


def _topic(text: str) -> str:
    topic = text.strip()
    if len(topic) > 100 or any(ch < " " for ch in topic):
        raise UsageError(f'invalid topic "{text}": at most 100 characters, no control characters')
    return topic


class TasksMixin(LifecycleMixin):
    def create_task(
        self,
        project_id: int,
        name: str,
        *,
        title: str = "",
        topic: str = "",
        content: str = "",
        branch: str = "",
    ) -> Task:
        """A new task, status ready, branch corral/<name> by default; ConflictError if the name is taken,
        UsageError for a branch git would refuse (found now, not when its first agent fails to start)."""
        name = task_name(name)
        topic = _topic(topic)
        check_content_size(content, f'the content of task "{name}"')
        if branch:
            from actors.git.names import check_branch_name

            check_branch_name(branch, what="the task's branch")
        now = self._now()
        with self._write():
            project = self._project_name(project_id)
            if self._conn.execute(_EXISTS, (project_id, name)).get is not None:
                raise ConflictError(f'a task named "{name}" already exists in project {project}')
            topic_id = None
            if topic:
                self._conn.execute(_INSERT_TOPIC, (project_id, topic, now))
                topic_id = self._conn.execute(_TOPIC_ID, (project_id, topic)).get
            self._conn.execute(
                _INSERT,
                (project_id, name, title, topic_id, branch or f"corral/{name}", content, now, now, now),
            )
            self._insert_audit(now, project_id, "task_created", "info", f"task {name} created", task=name)
            return self._get(project_id, name)

    def get_task(self, project_id: int, name: str) -> Task:
        """The task, or NotFoundError naming the task and the project."""
        return self._get(project_id, task_name(name))

    def _get(self, project_id: int, name: str) -> Task:
        row = self._conn.execute(_GET, (project_id, name)).fetchone()
        if row is None:
            raise NotFoundError(f'no task named "{name}" in project {self._project_name(project_id)}')
        return task_record(row)

    def list_tasks(
        self,
        project_id: int,
        *,
        statuses: Iterable[str] = (),
        topic: str = "",
        include_cancelled: bool = False,
    ) -> list[Task]:
        """Tasks in creation order. `statuses` may name "planned" (ready with phase planned); cancelled tasks
        are left out unless asked for, by `include_cancelled` or by naming the status."""
        where, args = self._task_filter(project_id, statuses, topic, include_cancelled)
        sql = f"SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE {where} ORDER BY t.id"
        return [task_record(row) for row in self._conn.execute(sql, args)]

    def list_task_summaries(
        self,
        project_id: int,
        *,
        statuses: Iterable[str] = (),
        topic: str = "",
        include_cancelled: bool = False,
    ) -> list[TaskSummary]:
        """`list_tasks`, without the contents (only their size): what a listing shows. The plans are not
        even read from the file."""
        where, args = self._task_filter(project_id, statuses, topic, include_cancelled)
        sql = f"SELECT {TASK_SUMMARY_COLUMNS} FROM {TASK_FROM} WHERE {where} ORDER BY t.id"
        summaries = [summary_record(row) for row in self._conn.execute(sql, args)]
        # Imported here: `corral signal emit` imports the store and never lists tasks, and protocols.waves
        # (with the plan parser it imports) is ~8 ms of its cold start.
        from protocols.waves import wave_progress

        waves: dict[int, list[WaveTaskRecord]] = {}
        for row in self._conn.execute(_PROJECT_WAVE_TASKS, (project_id,)):
            record = WaveTaskRecord(*row)
            waves.setdefault(record.task_id, []).append(record)
        return [
            msgspec.structs.replace(t, wave=wave_progress(waves[t.id])) if t.id in waves else t
            for t in summaries
        ]

    def _task_filter(
        self, project_id: int, statuses: Iterable[str], topic: str, include_cancelled: bool
    ) -> tuple[str, list[object]]:
        where: list[str] = ["t.project_id = ?"]
        args: list[object] = [project_id]
        wanted = [parse_status(s) for s in statuses]
        if wanted:
            terms = []
            for status, phase in dict.fromkeys(wanted):
                terms.append("(t.status = ? AND t.phase = ?)" if phase else "t.status = ?")
                args.extend([status.value, phase] if phase else [status.value])
            where.append(f"({' OR '.join(terms)})")
        elif not include_cancelled:
            where.append("t.status <> 'cancelled'")
        if topic:
            where.append("tp.name = ?")
            args.append(_topic(topic))
        return " AND ".join(where), args

    def projects_with_live_steps(self) -> set[int]:
        """The ids of projects with a task in a step that has an agent (planning, implementing, reviewing,
        verifying): their Project must run, to watch that the step has a live agent or shows why not."""
        rows = self._conn.execute(_LIVE_STEPS)
        return {int(row[0]) for row in rows}

    def list_topics(self, project_id: int) -> list[str]:
        return [row[0] for row in self._conn.execute(_TOPICS, (project_id,))]

    def set_task_waiting(
        self, task: Task, waiting: TaskWaiting | None, *, replacing: frozenset[str] | None = None
    ) -> bool:
        """Say why `task` waits for a person (None: it no longer does), if it is still in the status it was
        in, entered at the same time — a decision made on a snapshot never lands on a later step. A new
        reason is recorded in the audit log (`task_waiting`, warn; `task_unblocked` when it clears); the same
        one again changes nothing. `replacing`: only a wait of one of these kinds (or none) is replaced, so
        one keeper never clears another's question. True if something changed."""
        status = Status(task.status)
        stamp = getattr(task, f"{status.value}_at")
        now = self._now()
        with self._write():
            args = (task.project_id, task.name, status, stamp)
            current = self._conn.execute(_GET_WAITING[status], args).get
            if current is None:
                return False  # the task moved on (or was deleted) since the snapshot
            before = _decode_waiting.decode(current) if current else None
            if _same_wait(before, waiting):
                return False
            if replacing is not None and before is not None and before.kind not in replacing:
                return False
            if waiting is not None:
                waiting = msgspec.structs.replace(waiting, since=now)
            text = _encode(waiting).decode() if waiting is not None else ""
            self._conn.execute(_SET_WAITING, (text, task.project_id, task.name))
            if waiting is not None:
                answers = f" (answer: {'; '.join(waiting.commands)})" if waiting.commands else ""
                kind, level = "task_waiting", AuditLevel.WARN
                text = f"waits for you: {waiting.reason}{answers}"
            else:
                reason = before.reason if before is not None else ""
                kind, level, text = "task_unblocked", AuditLevel.INFO, f"no longer waits: {reason}"
            self._insert_audit(now, task.project_id, kind, level, f"{task.name} {text}", task=task.name)
        return True

    def update_content(self, project_id: int, name: str, content: str) -> Task:
        """Replace the task's content (its plan); TooLargeError over MAX_CONTENT_BYTES."""
        name = task_name(name)
        check_content_size(content, f'the content of task "{name}"')
        now = self._now()
        with self._write():
            state = self._task_state(project_id, name)
            self._conn.execute(_UPDATE_CONTENT, (content, now, project_id, name))
            self._insert_audit(
                now,
                project_id,
                "task_content_updated",
                "info",
                f"task {name}: content updated ({len(content)} characters)",
                task=state.name,
            )
            return self._get(project_id, name)

    def delete_task(self, project_id: int, name: str) -> None:
        """Delete the task and its wave tasks; its signals and audit events stay, naming it."""
        name = task_name(name)
        now = self._now()
        with self._write():
            state = self._task_state(project_id, name)
            self._conn.execute(_DELETE, (state.id,))
            self._insert_audit(
                now,
                project_id,
                "task_deleted",
                "info",
                f"task {name} deleted (was {state.status})",
                task=name,
            )

    def transition_task(
        self,
        project_id: int,
        name: str,
        event: str | Event,
        *,
        source: Source = Source.USER,
        payload: str = "",
    ) -> TransitionResult:
        """Apply `event` to the task in one transaction: status, phase, stamp, audit event, outbox item.

        `payload` is what a signal of the same name would carry: text (the body: review feedback) or a JSON
        object. Raises TransitionError if the event does not fit, ConflictError for the topic rule.
        """
        name = task_name(name)
        ev = event if isinstance(event, Event) else parse_event(event)
        source = parse_source(source)
        canonical = normalize_payload(SIGNAL_TYPES[ev.value], payload)
        decoded = decode_payload(SIGNAL_TYPES[ev.value], canonical)
        body = decoded.body if isinstance(decoded, Body) else ""
        now = self._now()
        with self._write():
            state = self._task_state(project_id, name)
            change = self._decide(state, ev, source)
            self._enter(state, change, source=source, body=body, detail=canonical, signal_id=None, now=now)
            return TransitionResult(self._get(project_id, name), change)

    def set_status(self, project_id: int, name: str, status: str, *, reason: str = "") -> Task:
        """Put the task in `status` ("planned" = ready with phase planned), bypassing the lifecycle.

        For repairs only: it is audited at level warn with the reason, and records no side effect to perform.
        """
        name = task_name(name)
        target, phase = parse_status(status)
        now = self._now()
        with self._write():
            state = self._task_state(project_id, name)
            self._conn.execute(_FORCE[target], (target.value, phase, now, now, state.id))
            shown = PHASE_PLANNED if phase else target.value
            was = PHASE_PLANNED if state.phase == PHASE_PLANNED and state.status == "ready" else state.status
            message = f"{name}: status forced {was} → {shown}" + (f": {reason}" if reason else "")
            detail = _encode(
                {
                    "from": state.status,
                    "from_phase": state.phase,
                    "to": target.value,
                    "phase": phase,
                    "reason": reason,
                }
            ).decode()
            self._insert_audit(
                now, project_id, "status_forced", AuditLevel.WARN, message, task=name, detail=detail
            )
            return self._get(project_id, name)


def _same_wait(before: TaskWaiting | None, after: TaskWaiting | None) -> bool:
    """The same wait, whenever it began."""
    if before is None or after is None:
        return before is after
    return msgspec.structs.replace(before, since="") == msgspec.structs.replace(after, since="")
