"""What a Project is asked, and what it answers about its instances.

    entry = project.ask(ResolveTitle("fix"))       # exact, else a unique prefix, else a unique substring
    view = instance_view(entry, info, now)         # the entry and the live info, as the API shows it

The lookups only the Project can answer (titles, entries) and the messages it tells itself or is told by the
daemon's actors; a person's start request is `StartInstance` (protocols/instances.py), the API's body.
"""

from __future__ import annotations

import msgspec

from actors.instance import InstanceInfo
from protocols.instances import InstanceView

__all__ = [
    "AdoptSession",
    "DeleteInstance",
    "DrainOutbox",
    "InstanceEntry",
    "ListEntries",
    "RecoverInstances",
    "RenameInstance",
    "ResolveTitle",
    "RestartEnded",
    "instance_view",
    "project_id",
]


def project_id(name: str) -> str:
    """The Project's child id under the Projects supervisor: `project:<name>`."""
    return f"project:{name}"


class AdoptSession(msgspec.Struct, frozen=True, kw_only=True):
    """Make an instance called `title` of the tmux session `session` that no instance claims (an orphan): it
    runs `program` in `cwd`; its runtime adopts the live session → InstanceEntry."""

    session: str
    title: str
    program: str
    cwd: str


class RecoverInstances(msgspec.Struct, frozen=True):
    """Bring back the project's recorded instances that were running (told by the Project to itself when it
    starts) → the titles brought back."""


class RestartEnded(msgspec.Struct, frozen=True):
    """Start the ended instance `title` again (a person's restart): a fresh Instance that continues the
    agent's conversation → InstanceEntry. ConflictError while it still runs (ask the Instance itself)."""

    title: str


class DeleteInstance(msgspec.Struct, frozen=True, kw_only=True):
    """Delete the ended instance `title` (an exact title): its row, its worktree and its branch, unless they
    hold work nothing else keeps (ConflictError naming it; `force` discards it) → InstanceDeleted. A running
    or paused one is refused (ConflictError: kill it first); `dry_run` decides and changes nothing."""

    title: str
    force: bool = False
    dry_run: bool = False


class RenameInstance(msgspec.Struct, frozen=True, kw_only=True):
    """Call the standalone instance `title` (exact) `new_title` → InstanceEntry. Its agent goes on: a tmux
    agent is adopted by an Instance of the new title, a pty or sdk one continues its conversation; its
    session, branch and worktree keep their names. ConflictError for a task's agent or a taken title."""

    title: str
    new_title: str


class DrainOutbox(msgspec.Struct, frozen=True):
    """Perform the project's pending outbox items now (told on a timer, and by the daemon)."""


class ListEntries(msgspec.Struct, frozen=True):
    """Every instance of the project, in start order → tuple[InstanceEntry, ...]."""


class ResolveTitle(msgspec.Struct, frozen=True):
    """The instance `query` names (see `match_title`) → InstanceEntry; NotFoundError or AmbiguousTitle."""

    query: str


class InstanceEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What the Project knows of one of its instances: how it was launched and where its actor lives."""

    project: str
    title: str
    path: str  # the Instance's actor path, e.g. root/project:app/fix-login
    program: str
    mode: str
    branch: str
    worktree: str
    task: str
    agent_type: str
    session: str  # the tmux session, or the pty/sdk runtime's name
    created_at: float
    notes: tuple[str, ...] = ()
    final: InstanceInfo | None = None
    """Set once the agent ended (exited or failed) and its Instance shut down: its last info."""
    last_screen: str = ""
    """An ended agent's last screen, as its Instance last captured it."""


def instance_view(entry: InstanceEntry, info: InstanceInfo | None, now: float, why: str = "") -> InstanceView:
    """The entry with the Instance's info (`now` on the same monotonic clock as `info.since`); without info
    the status is `unknown` and `why` says why."""
    if info is None:
        status, reason, age, restarts, profile = "unknown", why, None, 0, ""
        attach = metrics = None
    else:
        status, reason, restarts, profile = info.status, info.reason, info.restarts, info.resource_profile
        age = round(max(0.0, now - info.since), 3)
        attach, metrics = info.attach, info.metrics
    conversation = info.conversation_id if info is not None else ""
    return InstanceView(
        project=entry.project,
        title=entry.title,
        status=status,
        reason=reason,
        status_age_s=age,
        mode=entry.mode,
        program=entry.program,
        branch=entry.branch,
        worktree=entry.worktree,
        task=entry.task,
        agent_type=entry.agent_type,
        restarts=restarts,
        resource_profile=profile,
        session=entry.session,
        created_at=entry.created_at,
        attach=attach,
        metrics=metrics,
        notes=entry.notes,
        conversation_id=conversation,
    )
