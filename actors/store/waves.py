"""Wave tasks: the numbered sub-tasks of a task's plan, grouped in waves that run in parallel."""

from __future__ import annotations

from collections.abc import Iterable

from actors.store.base import StoreBase
from actors.store.rows import WAVE_TASK_COLUMNS, WAVE_TASK_FIELDS
from protocols.errors import NotFoundError, UsageError
from protocols.records import WaveTaskRecord, WaveTaskStatus

__all__ = ["WavesMixin"]

_TASK = "SELECT name FROM tasks WHERE id = ?"
_DELETE = "DELETE FROM wave_tasks WHERE task_id = ?"
_INSERT = (
    "INSERT INTO wave_tasks (task_id, wave_number, task_number, title, status, updated_at) "
    "VALUES (?, ?, ?, ?, 'pending', ?)"
)
_LIST = (
    f"SELECT {WAVE_TASK_COLUMNS} FROM wave_tasks w WHERE w.task_id = ? ORDER BY w.wave_number, w.task_number"
)
_SET_STATUS = (
    "UPDATE wave_tasks SET status = ?, instance = ?, updated_at = ?, "
    "attempts = attempts + (? = 'running') WHERE task_id = ? AND task_number = ? "
    f"RETURNING {WAVE_TASK_FIELDS}"
)
_SAVE = (
    "UPDATE wave_tasks SET status = ?, attempts = ?, instance = ?, updated_at = ? "
    "WHERE task_id = ? AND task_number = ?"
)
_RUNNING_WAVES = (
    "SELECT DISTINCT t.project_id FROM tasks t JOIN wave_tasks w ON w.task_id = t.id "
    "WHERE t.status = 'implementing' AND w.status IN ('pending', 'running')"
)
_FINISH_QUEUED = (
    "SELECT 1 FROM signals WHERE project_id = ? AND task = ? AND signal_type = 'implement_task_finished' "
    "AND status IN ('pending', 'processing') AND json_extract(payload, '$.wave_number') = ? "
    "AND json_extract(payload, '$.task_number') = ? LIMIT 1"
)
_STATUSES = tuple(s.value for s in WaveTaskStatus)


class WavesMixin(StoreBase):
    def set_wave_tasks(self, task_id: int, rows: Iterable[tuple[int, int, str]]) -> None:
        """Replace the task's wave tasks with `rows` of (wave_number, task_number, title), all pending."""
        wanted = list(rows)
        seen: set[int] = set()
        for wave_number, task_number, _title in wanted:
            if wave_number < 1 or task_number < 1:
                raise UsageError(f"wave {wave_number} task {task_number}: wave and task numbers start at 1")
            if task_number in seen:
                raise UsageError(
                    f"task number {task_number} appears twice: task numbers are unique in a plan"
                )
            seen.add(task_number)
        now = self._now()
        with self._write():
            self._task_name(task_id)
            self._conn.execute(_DELETE, (task_id,))
            self._conn.executemany(_INSERT, [(task_id, w, t, title, now) for w, t, title in wanted])

    def list_wave_tasks(self, task_id: int) -> list[WaveTaskRecord]:
        return [WaveTaskRecord(*row) for row in self._conn.execute(_LIST, (task_id,))]

    def set_wave_task_status(
        self, task_id: int, task_number: int, status: str, *, instance: str = ""
    ) -> WaveTaskRecord:
        """Set a wave task's status (and the instance running it); entering running counts an attempt."""
        if status not in _STATUSES:
            raise UsageError(f'unknown wave task status "{status}"; statuses are: {", ".join(_STATUSES)}')
        with self._write():
            row = self._conn.execute(
                _SET_STATUS, (status, instance, self._now(), status, task_id, task_number)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"task {self._task_name(task_id)} has no wave task {task_number}")
            return WaveTaskRecord(*row)

    def save_wave_tasks(
        self, task_id: int, changes: Iterable[tuple[int, str, int, str]]
    ) -> list[WaveTaskRecord]:
        """Write what a wave step changed, in one transaction: (task_number, status, attempts, instance) per
        row (the wave scheduler's own attempt count, so a replayed step writes the same). Returns every row
        of the task as stored; NotFoundError for a task number the task does not have."""
        wanted = list(changes)
        for _number, status, _attempts, _instance in wanted:
            if status not in _STATUSES:
                raise UsageError(f'unknown wave task status "{status}"; statuses are: {", ".join(_STATUSES)}')
        now = self._now()
        with self._write():
            for number, status, attempts, instance in wanted:
                self._conn.execute(_SAVE, (status, attempts, instance, now, task_id, number))
                if self._conn.changes() != 1:
                    raise NotFoundError(f"task {self._task_name(task_id)} has no wave task {number}")
        return self.list_wave_tasks(task_id)

    def wave_finish_queued(self, project_id: int, task: str, wave_number: int, task_number: int) -> bool:
        """True when an implement_task_finished for this wave task waits to be applied."""
        found = self._conn.execute(_FINISH_QUEUED, (project_id, task, wave_number, task_number)).fetchone()
        return found is not None

    def projects_running_waves(self) -> set[int]:
        """The ids of projects with an implementing task whose waves are not over: a daemon that starts must
        start their Projects even when no agent of theirs is alive and no outbox item is pending."""
        return {int(row[0]) for row in self._conn.execute(_RUNNING_WAVES)}

    def _task_name(self, task_id: int) -> str:
        name = self._conn.execute(_TASK, (task_id,)).get
        if name is None:
            raise NotFoundError(f"no task with id {task_id}")
        return str(name)
