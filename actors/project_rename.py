"""Renaming an instance: the Project's side (`RenameInstance`), on its own thread.

    class Project(EndedInstances, Renames, TaskHost, Supervisor): ...

A title is an Instance's child id and actor path, its entry's key and its row's key, so a rename is a
restart under the new title that takes the agent back, as a daemon restart does: the Instance is stopped in
order (a tmux agent lives on; a pty or sdk agent stops), the row is renamed, and an Instance of the new title
is started from it (a tmux session is adopted; a pty or sdk agent continues its conversation). The session,
branch and worktree keep their names. An ended instance only changes its row and entry.

Killed at any line, nothing is lost: before the row is renamed a restarted daemon brings the agent back under
its old title, after it under its new one. If the new Instance cannot start, the instance is kept as failed
under its new title, with why, for a person to restart.

A task's agent is never renamed: its title is how its task and wave find it (t-W1-T2).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors.project_ended import request_of
from actors.project_inbox import InstanceEntry, RenameInstance
from protocols.errors import ConflictError, NotFoundError, UsageError
from protocols.instances import FINISHED, StartInstance
from protocols.records import InstanceRecord
from protocols.titles import check_title

__all__ = ["Renames"]

log = logging.getLogger(__name__)


class Renames:
    """The Project's renaming of its standalone instances."""

    if TYPE_CHECKING:  # provided by the Project
        spec: Any
        _children: dict[str, Any]
        _entries: dict[str, InstanceEntry]
        _specs: dict[str, Any]
        _statuses: dict[str, Any]
        _rows: dict[str, InstanceRecord]
        _ended_before: set[str]

        def _start_instance(
            self,
            request: StartInstance,
            recorded: InstanceRecord | None = None,
            adopt: Any = None,
            *,
            again: bool = False,
            renamed_from: str = "",
        ) -> InstanceEntry: ...

        def _terminate_child_now(self, title: str) -> None: ...

        def _keep_ended(self, record: InstanceRecord) -> None: ...

    def _rename(self, message: RenameInstance) -> InstanceEntry:
        old, new = message.title, check_title(message.new_title)
        entry = self._entries.get(old)
        child = self._children.get(old)
        if entry is None or (child is None and old not in self._ended_before):
            raise NotFoundError(f'no instance "{old}" in project {self.spec.name}')
        if new == old:
            raise UsageError(f'instance "{old}" is already called "{new}"')
        if new in self._entries or new in self._children:
            raise ConflictError(
                f'instance "{new}" already exists in project {self.spec.name}; choose another title'
            )
        if entry.task:
            raise ConflictError(
                f'instance "{old}" is an agent of task {entry.task}: its title is how the task finds it, '
                "so it cannot be renamed (only a standalone instance can)"
            )
        if not self.spec.store_path:
            raise ConflictError(f'instance "{old}" cannot be renamed: this daemon records no instances')
        if child is not None:
            self._terminate_child_now(old)  # in order: a tmux agent lives on for the new Instance to adopt
        from actors.store import Store

        with Store.open(Path(self.spec.store_path)) as store:
            record = store.rename_instance(self.spec.name, old, new)
        for held in (self._entries, self._specs, self._statuses, self._rows):
            held.pop(old, None)
        self._ended_before.discard(old)
        log.info("project %s: renamed instance %s to %s", self.spec.name, old, new)
        if record.status in FINISHED:
            self._keep_ended(record)
            return self._entries[new]
        try:
            return self._start_instance(request_of(record), recorded=record, renamed_from=old)
        except Exception as exc:
            why = f"renamed from {old}, but could not be started again: {exc}"
            with Store.open(Path(self.spec.store_path)) as store:
                store.set_instance_status(self.spec.name, new, "failed", why, pid=None)
                failed = store.get_instance(self.spec.name, new)
            self._keep_ended(msgspec.structs.replace(failed, status="failed", reason=why))
            raise ConflictError(f"instance {why}; restart it: corral instance restart {new}") from None
