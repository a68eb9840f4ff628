"""The sidebar's rows: tasks grouped by topic with their agents nested, then the standalone agents — filtered,
searched and sorted as the View says.

One function decides the rows (`rows`), and both the renderer (what to draw) and the key handler (what ↑/↓
moves to, what a key acts on) read it, so what is selected is always what is drawn. A row's `key` is the
selection's identity (`task:<name>`, `instance:<title>`), stable across refreshes and re-sorts; headers have
no key a person can select.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from frontends.dashboard.model import Fleet, View
from frontends.dashboard.theme import STATUS_ORDER
from protocols.instances import InstanceView
from protocols.records import TaskSummary

RowKind = Literal["topic", "task", "instance", "section"]

ACTIVE = frozenset({"loading", "running", "ready", "waiting"})
"""Filter 2 ("active only") keeps agents that are alive and not paused — doing something or waiting for a
person — and the tasks that are under way or wait for a person."""

TASK_DONE = frozenset({"done", "cancelled"})
_TASK_ORDER = {
    "implementing": 1,
    "reviewing": 2,
    "verifying": 3,
    "planning": 4,
    "ready": 5,
    "done": 6,
    "cancelled": 7,
}


class Row(msgspec.Struct, frozen=True, kw_only=True):
    """One sidebar row. `depth` 1 is an agent under its task."""

    kind: RowKind
    key: str = ""  # "" for a header: not selectable
    label: str = ""
    depth: int = 0
    task: TaskSummary | None = None
    instance: InstanceView | None = None


def task_key(name: str) -> str:
    return f"task:{name}"


def instance_key(title: str) -> str:
    return f"instance:{title}"


def _instance_sort(view: View):  # type: ignore[no-untyped-def]
    if view.sort == "name":
        return lambda i: i.title
    if view.sort == "created":
        return lambda i: (i.created_at, i.title)
    return lambda i: (STATUS_ORDER.get(i.status, 5), i.title)


def _task_sort(view: View):  # type: ignore[no-untyped-def]
    if view.sort == "name":
        return lambda t: t.name
    if view.sort == "created":
        return lambda t: (t.created_at, t.name)
    return lambda t: (0 if t.waiting else 1, _TASK_ORDER.get(t.status, 8), t.name)


def _matches(text: str, needle: str) -> bool:
    return needle in text.lower()


def rows(fleet: Fleet, view: View) -> tuple[Row, ...]:
    """The sidebar as the View shows it: topics (sorted by name, no topic last) with their tasks, each task
    followed by its agents; then "agents" with the agents of no task (or of a task not listed)."""
    needle = view.search.strip().lower()
    active = view.filter == "active"
    by_task: dict[str, list[InstanceView]] = {}
    names = {t.name for t in fleet.tasks}
    standalone: list[InstanceView] = []
    for inst in fleet.instances:
        if active and inst.status not in ACTIVE:
            continue
        if inst.task and inst.task in names:
            by_task.setdefault(inst.task, []).append(inst)
        else:
            standalone.append(inst)

    inst_key = _instance_sort(view)
    topics: dict[str, list[tuple[TaskSummary, list[InstanceView]]]] = {}
    for task in fleet.tasks:
        agents = by_task.get(task.name, [])
        if needle and not (_matches(task.name, needle) or _matches(task.title, needle)):
            agents = [i for i in agents if _matches(i.title, needle)]
            if not agents:
                continue
        if active and not agents and (task.status in TASK_DONE and not task.waiting):
            continue
        topics.setdefault(task.topic, []).append((task, sorted(agents, key=inst_key)))

    out: list[Row] = []
    t_key = _task_sort(view)
    for topic in sorted(topics, key=lambda t: (t == "", t)):
        out.append(Row(kind="topic", label=topic or "no topic"))
        for task, agents in sorted(topics[topic], key=lambda pair: t_key(pair[0])):
            out.append(Row(kind="task", key=task_key(task.name), label=task.name, task=task))
            out.extend(
                Row(kind="instance", key=instance_key(i.title), label=i.title, depth=1, instance=i)
                for i in agents
            )
    if needle:
        standalone = [i for i in standalone if _matches(i.title, needle) or _matches(i.task, needle)]
    if standalone:
        out.append(Row(kind="section", label="agents"))
        out.extend(
            Row(kind="instance", key=instance_key(i.title), label=i.title, instance=i)
            for i in sorted(standalone, key=inst_key)
        )
    return tuple(out)


def selectable(all_rows: Sequence[Row]) -> list[Row]:
    return [r for r in all_rows if r.key]


def selected_row(all_rows: Sequence[Row], view: View) -> Row | None:
    """The selected row; the first selectable one when the selection is gone (filtered out, deleted)."""
    first = None
    for row in all_rows:
        if row.key:
            if row.key == view.selected:
                return row
            if first is None:
                first = row
    return first
