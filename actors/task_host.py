"""The Project's side of its tasks: carrying out the outbox and starting and stopping the tasks' agents.

    class Project(TaskHost, Supervisor): ...   # on the Project's thread, beside its Instances

A mixin of the Project rather than an actor of its own (DESIGN.md): starting a task's agent is the Project's
own work — `_start_instance`, a child of its own — so the outbox runner (actors/tasks.py) and the wave keeper
(actors/waves.py) call these methods directly on the Project's thread, and nothing waits on another inbox.
It implements `TaskAgents` (actors/task_agents.py) for them.

What it needs from the Project: `spec` (its ProjectSpec), `ctx`, `_children` (the supervisor's), `_entries`
and `_specs` (its instances), `_start_instance` and `_terminate_child_now`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors.project_inbox import DrainOutbox
from actors.steps import AgentSight
from protocols.errors import NotFoundError
from protocols.instances import StartInstance

if TYPE_CHECKING:
    from actors.instance import AgentEnded

__all__ = ["OUTBOX_TICK_S", "TaskHost"]

log = logging.getLogger(__name__)

OUTBOX_TICK_S = 1.0
"""How often a Project looks for outbox items nobody told it about (a transition made by the CLI)."""


class TaskHost:
    """Carries out a Project's outbox and hosts its tasks' agents, on the Project's thread."""

    _outbox: Any = None  # actors.tasks.OutboxRunner, made on the Project's thread at the first drain
    _outbox_timer: Any = None

    if TYPE_CHECKING:  # provided by the Project
        spec: Any
        ctx: Any
        actor_ref: Any
        _children: dict[str, Any]
        _entries: dict[str, Any]
        _specs: dict[str, Any]
        _statuses: dict[str, Any]

        def _start_instance(self, request: StartInstance) -> Any: ...

        def _terminate_child_now(self, title: str) -> None: ...

        def _recover(self, record: Any) -> Any: ...

    def _drain_outbox(self) -> int:
        """Perform the pending outbox items and check the running waves against their agents; never raises
        (a bad item is failed, a store error logged)."""
        settled = 0
        try:
            runner = self._outbox_runner()
            if runner is not None:
                settled = runner.drain()
                runner.waves.reconcile()
                settled += runner.drain()  # what the reconciliation applied (implement_finished)
                runner.steps.reconcile(self.ctx.env.clock.monotonic())
        except Exception as exc:
            log.error("project %s: cannot carry out the outbox: %s", self.spec.name, exc)
            self._drop_runner()
        scheduler = self.ctx.env.scheduler
        if self.spec.store_path and scheduler is not None:
            if self._outbox_timer is not None:
                self._outbox_timer.cancel()
            ref = self.actor_ref
            self._outbox_timer = scheduler.call_later(
                OUTBOX_TICK_S, functools.partial(_tell, ref, DrainOutbox())
            )
        return settled

    def _task_agent_ended(self, ended: AgentEnded) -> None:
        """A task's agent ended: its wave task completes or fails now, and what follows is carried out."""
        try:
            runner = self._outbox_runner()
            if runner is not None:
                runner.waves.agent_ended(ended)
                runner.drain()
        except Exception as exc:  # the wave keeper's reconciliation settles it within a second
            log.error("project %s: after %s ended: %s", self.spec.name, ended.title, exc)
            self._drop_runner()

    def _drop_runner(self) -> None:
        runner, self._outbox = self._outbox, None  # opened again at the next drain
        if runner is not None:
            try:
                runner.store.close()
            except Exception as exc:  # never out of a tell handler: that would stop the Project
                log.warning("project %s: closing the outbox's store: %s", self.spec.name, exc)

    def _outbox_runner(self) -> Any:
        if self._outbox is None and self.spec.store_path:
            from actors.store import Store
            from actors.tasks import OutboxRunner, RunnerProject

            store = Store.open(Path(self.spec.store_path))
            try:
                record = store.get_project(self.spec.name)
            except Exception:
                store.close()
                raise
            self._outbox = OutboxRunner(store, RunnerProject(record.id, record.name, self.spec.root), self)
        return self._outbox

    def start_task_agent(self, agent: Any, since: str) -> bool:
        """`TaskAgents.start_task_agent`: never a second agent with a title, nor one already started for the
        item or attempt being performed (recorded at or after `since`); an older one is stopped first."""
        try:
            recorded = self._outbox.store.get_instance(self.spec.name, agent.title)
        except NotFoundError:
            recorded = None
        if recorded is not None and (
            recorded.attempt_key == agent.attempt_key if agent.attempt_key else recorded.created_at >= since
        ):
            return False
        if agent.title in self._children:
            if recorded is None:
                return False  # running, but unrecorded: nothing tells which round it belongs to
            self.stop_task_agent(agent.title, "replaced by a new attempt")
        request = StartInstance(**msgspec.structs.asdict(agent))  # an AgentStart is a StartInstance's subset
        self._start_instance(request)
        return True

    def running_agent(self, title: str) -> bool:
        """Running, or restarting after its Instance crashed; an ended (shut down) instance is not."""
        child = self._children.get(title)
        return child is not None and child.state != "stopped"

    def task_agent_titles(self, task: str, keep: Callable[[str], bool]) -> tuple[str, ...]:
        titles = []
        for title, entry in self._entries.items():
            if entry.task != task or title not in self._children:
                continue
            try:
                key = self._outbox.store.get_instance(self.spec.name, title).attempt_key
            except NotFoundError:
                key = ""
            if not keep(key):
                titles.append(title)
        return tuple(titles)

    def stop_task_agent(self, title: str, reason: str) -> bool:
        """Kill the agent, forget its instance, and record it exited (so no restart brings it back)."""
        if title not in self._children:
            return False
        ref = self.ctx.env.directory.get(f"{self.ctx.path}/{title}")
        if ref is not None:
            from actors.instance import InstanceKill

            try:
                ref.ask(InstanceKill(f"stopped: {reason}"), timeout=self.spec.instance_shutdown_s)
            except Exception as exc:  # the child is stopped below all the same
                log.warning("project %s: kill of %s: %s", self.spec.name, title, exc)
        self._terminate_child_now(title)
        # Whatever the Instance managed (it may have been between two runs of its agent, or not answer), no
        # session of the title may outlive it: an orderly stop leaves a tmux agent running for re-adoption,
        # and a session whose row says "exited" could be killed by nobody (`instance kill`: no such instance;
        # `kill --orphan`: it belongs to an instance).
        self._kill_session(title)
        self._entries.pop(title, None)
        self._specs.pop(title, None)
        if self._outbox is not None:
            self._outbox.store.set_instance_status(self.spec.name, title, "exited", f"stopped: {reason}")
        return True

    def agent_sight(self, title: str) -> AgentSight | None:
        """`StepHost.agent_sight`: the agent's last status as its Instance told it (StatusNotice), and
        whether an Instance holds it; None for a title the Project does not know."""
        if title not in self._children:
            return None
        seen = self._statuses.get(title)
        live = self.running_agent(title)
        if seen is None:
            return AgentSight(live=live)
        return AgentSight(live=live, status=seen.status, reason=seen.reason, since=seen.since)

    def nudge(self, title: str, text: str) -> bool:
        """`StepHost.nudge`: send `text` to the agent (told, not asked: the Project never waits on it)."""
        from actors.instance import InstanceSend

        return self.ctx.env.directory.tell(f"{self.ctx.path}/{title}", InstanceSend(text))

    def bring_back(self, record: Any) -> None:
        """`StepHost.bring_back`: an agent recorded running that no Instance holds, started as a daemon
        restart would (its session adopted if it lives, else continuing its conversation)."""
        if record.title in self._children:
            self._terminate_child_now(record.title)  # an ended child: replaced by the one brought back
        self._recover(record)

    def _kill_session(self, title: str) -> None:
        """Kill the tmux session of `title`, if one is left (idempotent): an orderly stop leaves a tmux agent
        running for the next generation to adopt, which a stopped task agent must not be."""
        entry = self._entries.get(title)
        server = self.spec.tmux_server
        if entry is None or entry.mode != "tmux" or server is None or not entry.session:
            return
        try:
            server.kill_session(entry.session)
        except Exception as exc:
            log.warning("project %s: killing the session of %s: %s", self.spec.name, title, exc)


def _tell(ref: Any, message: Any) -> None:
    try:
        ref.tell(message)
    except Exception:  # the Project stopped meanwhile
        pass
