"""SQL select lists that produce the records of `protocols.records`, column for field, in field order.

A record is built positionally (`Task(*row)`), so each select list is generated from the Struct's fields; a
field that is not a plain column of its table (a task's topic name) says where it comes from.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from protocols.records import (
    AuditEvent,
    OutboxItem,
    Project,
    Signal,
    Task,
    TaskSummary,
    TaskWaiting,
    WaveTaskRecord,
)

__all__ = [
    "AUDIT_COLUMNS",
    "OUTBOX_COLUMNS",
    "PROJECT_COLUMNS",
    "SIGNAL_COLUMNS",
    "SIGNAL_FIELDS",
    "TASK_COLUMNS",
    "TASK_FROM",
    "TASK_SUMMARY_COLUMNS",
    "WAVE_TASK_COLUMNS",
    "WAVE_TASK_FIELDS",
    "select_list",
    "summary_record",
    "task_record",
]


def select_list(record: type[msgspec.Struct], alias: str, overrides: Mapping[str, str] | None = None) -> str:
    """The columns of `record` as `alias.field` (bare `field` when alias is ""), with `overrides` by field."""
    overrides = overrides or {}
    prefix = f"{alias}." if alias else ""
    return ", ".join(overrides.get(field, f"{prefix}{field}") for field in record.__struct_fields__)


PROJECT_COLUMNS = select_list(Project, "p")
TASK_COLUMNS = select_list(Task, "t", {"topic": "coalesce(tp.name, '')"})
# octet_length reads a text's size from the row's header: the plans themselves are not read.
TASK_SUMMARY_COLUMNS = select_list(
    TaskSummary,
    "t",
    {"topic": "coalesce(tp.name, '')", "content_bytes": "octet_length(t.content)", "wave": "NULL"},
)
TASK_FROM = "tasks t LEFT JOIN topics tp ON tp.id = t.topic_id"
SIGNAL_COLUMNS = select_list(Signal, "s")
SIGNAL_FIELDS = select_list(Signal, "")  # for RETURNING
AUDIT_COLUMNS = select_list(AuditEvent, "a")
OUTBOX_COLUMNS = select_list(OutboxItem, "o")
WAVE_TASK_COLUMNS = select_list(WaveTaskRecord, "w")
WAVE_TASK_FIELDS = select_list(WaveTaskRecord, "")


_waiting = msgspec.json.Decoder(TaskWaiting)


def task_record(row: tuple[object, ...]) -> Task:
    """A Task from a row of TASK_COLUMNS: its `waiting` column is JSON ('' when it waits for nobody)."""
    *fields, waiting = row
    return Task(*fields, waiting=_waiting.decode(waiting) if waiting else None)  # type: ignore[arg-type]


def summary_record(row: tuple[object, ...]) -> TaskSummary:
    """A TaskSummary from a row of TASK_SUMMARY_COLUMNS (its `waiting` decoded as in `task_record`; its
    `wave` is not a column: the store adds it from the wave tasks)."""
    *fields, waiting, _wave = row
    return TaskSummary(*fields, waiting=_waiting.decode(waiting) if waiting else None)  # type: ignore[arg-type]
