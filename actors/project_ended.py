"""The Project's ended instances: kept listed across a restart, restarted from their row, deleted.

    class Project(EndedInstances, TaskHost, Supervisor): ...   # on the Project's thread

An instance whose agent ended while the daemon ran is an ended child of the Project (its Instance shut down,
its spec kept). One that had ended before this Project started — a daemon restart, a crash of the Project —
has no child at all: `_keep_ended` lists it from its row (status, reason and age; no actor), a person's
restart starts it from that row as a recovery would but as a restart (no adoption, told it was restarted),
and a task's agent with its title simply replaces it. Deleting either kind (`_delete`) removes the worktree,
the branch and the row (actors/instance_removal.py decides which), on this thread so that no start or
restart of the title runs meanwhile.

What it needs from the Project: `spec`, `ctx`, `_children`, `_entries`, `_specs`, `_statuses`, `_rows`,
`_ended_before`, `_start_instance` and `_terminate_child_now`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors.git import GitError, created_by_corral, work_at_risk
from actors.instance import InstanceInfo
from actors.instance_removal import Removal, plan_removal, remove
from actors.project_inbox import DeleteInstance, InstanceEntry
from protocols.errors import ConflictError, NotFoundError
from protocols.instances import InstanceDeleted, StartInstance
from protocols.records import InstanceRecord

__all__ = ["EndedInstances", "request_of"]

log = logging.getLogger(__name__)


class EndedInstances:
    """The ended instances of a Project that no Instance holds, and the deletion of any ended one."""

    if TYPE_CHECKING:  # provided by the Project
        spec: Any
        ctx: Any
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
        ) -> InstanceEntry: ...

        def _terminate_child_now(self, title: str) -> None: ...

    def _restart_recorded(self, title: str) -> InstanceEntry:
        """Restart an instance that ended before this Project started: started from its row as a recovery
        would start it, but as a person's restart (no adoption, told it was restarted by request)."""
        record = self._rows[title]
        again = msgspec.structs.replace(record, status="loading", reason="restarted by request", restarts=0)
        entry = self._start_instance(request_of(record), recorded=again, again=True)
        log.info("project %s: restarted ended instance %s", self.spec.name, title)
        return entry

    def _keep_ended(self, record: InstanceRecord) -> None:
        """List an instance that had ended before this Project started, from its row: no actor, no agent."""
        clock = self.ctx.env.clock
        try:
            age = (clock.now() - datetime.fromisoformat(record.updated_at)).total_seconds()
        except (TypeError, ValueError):  # an unreadable stamp: shown as ended just now
            age = 0.0
        info = InstanceInfo(
            project=self.spec.name,
            title=record.title,
            status=record.status,
            reason=record.reason,
            since=clock.monotonic() - max(0.0, age),
            mode=record.mode,
            restarts=record.restarts,
            resource_profile=record.resource_profile,
            task=record.task,
            agent_type=record.agent_type,
            conversation_id=record.sdk_session_id,
        )
        self._entries[record.title] = InstanceEntry(
            project=self.spec.name,
            title=record.title,
            path=f"{self.ctx.path}/{record.title}",
            program=record.program,
            mode=record.mode,
            branch=record.branch,
            worktree=record.worktree_path if record.worktree_mode != "none" else "",
            task=record.task,
            agent_type=record.agent_type,
            session=record.session,
            created_at=_timestamp(record.created_at),
            final=info,
        )
        self._rows[record.title] = record
        self._ended_before.add(record.title)

    # -- deletion -------------------------------------------------------------------------------------------

    def _delete(self, request: DeleteInstance) -> InstanceDeleted:
        """Delete an ended instance: its worktree and branch (actors/instance_removal.py), then its row, then
        what the Project holds of it. On this thread, so no restart or start of the title runs meanwhile."""
        title = request.title
        entry = self._entries.get(title)
        child = self._children.get(title)
        if entry is None or (child is None and title not in self._ended_before):
            raise NotFoundError(f'no instance "{title}" in project {self.spec.name}')
        if child is not None and child.state != "stopped":
            raise self._still_running(title)
        record = self._rows.get(title) or self._recorded(title)
        status = entry.final.status if entry.final is not None else record.status
        plan = Removal()
        if record.worktree_mode not in ("", "none"):
            made = bool(record.branch) and created_by_corral(self.spec.root, record.branch)
            plan = plan_removal(record, self._other_rows(title), corral_made=made)
        lost = work_at_risk(self.spec.root, plan.branch, plan.worktree)
        if lost and not request.force:
            raise ConflictError(
                f'instance "{title}" has work that deleting it would lose: {"; and ".join(lost.describe())}. '
                f"Nothing was deleted. Merge, push or commit what you want to keep, or discard it: "
                f"corral instance delete {title} --force"
            )
        answer = InstanceDeleted(
            project=self.spec.name,
            title=title,
            status=status,
            worktree=plan.worktree,
            branch=plan.branch,
            kept=plan.kept,
            discarded=lost.describe(),
            dry_run=request.dry_run,
        )
        if request.dry_run:
            return answer
        try:
            remove(plan, self.spec.root, force=request.force)
        except GitError as exc:  # git refused (a WorktreeConflict says why): nothing of the row went yet
            if isinstance(exc, ConflictError):
                raise
            raise ConflictError(f'cannot delete instance "{title}": {exc}') from None
        if self.spec.store_path:
            from actors.store import Store

            with Store.open(Path(self.spec.store_path)) as store:
                store.delete_instance(self.spec.name, title)
        if child is not None:
            self._terminate_child_now(title)
        for held in (self._entries, self._specs, self._statuses, self._rows):
            held.pop(title, None)
        self._ended_before.discard(title)
        log.info("project %s: deleted instance %s (%s)", self.spec.name, title, status)
        return answer

    def _still_running(self, title: str) -> ConflictError:
        notice = self._statuses.get(title)
        status = notice.status if notice is not None else "running"
        return ConflictError(
            f'instance "{title}" is {status}: only an ended instance can be deleted; kill it first '
            f"(corral instance kill {title}), then delete it (corral instance delete {title})"
        )

    def _recorded(self, title: str) -> InstanceRecord:
        """The instance's row in the store (for an instance the Project holds no row of)."""
        if self.spec.store_path:
            from actors.store import Store

            with Store.open(Path(self.spec.store_path)) as store:
                return store.get_instance(self.spec.name, title)
        raise NotFoundError(f'no record of instance "{title}" in project {self.spec.name}')

    def _other_rows(self, title: str) -> list[InstanceRecord]:
        """Every other instance of the project: those it holds, and those only the store remembers."""
        rows = {t: r for t, r in self._rows.items() if t != title}
        if self.spec.store_path:
            from actors.store import Store

            with Store.open(Path(self.spec.store_path)) as store:
                rows |= {r.title: r for r in store.list_instances(self.spec.name) if r.title != title}
        return list(rows.values())


def request_of(record: InstanceRecord) -> StartInstance:
    """The start request a recorded instance was started with, as far as its row tells."""
    return StartInstance(
        title=record.title,
        program=record.program,
        mode=record.mode,
        prompt=record.prompt,
        task=record.task,
        agent_type=record.agent_type,
        wave=record.wave,
        attempt_key=record.attempt_key,
        branch=record.branch if record.worktree_mode == "branch" else "",
        worktree=record.worktree_mode,
    )


def _timestamp(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        return 0.0
