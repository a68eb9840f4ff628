"""Carrying out the outbox: what a committed transition decided, performed once, after the commit.

    runner = OutboxRunner(store, project, agents)     # on the Project's thread, with a Store opened there
    runner.drain()                                    # every pending item of the project, oldest first

A transition writes an `enter_<status>` outbox item in the transaction that moves the task (docs/store.md).
For each pending item the runner loads the task, reads its plan, asks `protocols.stages.on_enter` what to do
and does it: start an agent, stop the task's agents, wait for a person (a warn audit row), or apply a
chained transition. Then it marks the item done (`complete_outbox`) — only after every effect succeeded —
or failed (`fail_outbox`, with the reason and an error audit row). Nothing here raises out of `drain` for a
bad item: one poison item cannot stop the others or the Project.

Why it runs on the Project's thread, one per Project, and not as a child of the root: starting and stopping
agents is the Project's own work (`_start_instance`, its children), and a sibling that *asked* the Project
would wait on it while the Project may be busy stopping — the deadlock DESIGN.md forbids. On the Project's
thread the runner calls the Project directly, and nothing waits on anything.

Exactly once, with a daemon killed at any instant:

- **A stale item does nothing.** The item and the task's `<status>_at` stamp are written in one transaction
  with the same time, so an item is current only while the task is still in that status *with that stamp*.
  A re-run after a crash that happened after a chained `Transition` (the task has moved on) finds it stale
  and only marks it done: the transition is never applied twice.
- **An agent is never started twice.** A title that runs is left alone, and so is one whose recorded
  instance was created at or after the item (it was started for this item, and may have finished since).
- **Stops and waits repeat harmlessly**: "stop the task's agents" means those started before the item (a
  re-run does not kill the agent its first run started), stopping one that is not running is a no-op, and
  a second "waiting for you" row says the same thing again.

Waves: `StartWaves` and the wave signals' items (`wave_task_finished`, `start_wave`, `retry_wave`,
`advance_wave`) go to the project's `WaveKeeper` (actors/waves.py), which runs them on this same thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import msgspec

from actors.steps import StepKeeper
from actors.store import Store
from actors.task_agents import AgentStart, RunnerProject, TaskAgents, step_key
from actors.waves import WAVE_ITEM_KINDS, WaveKeeper
from protocols import stages
from protocols.config import Config, load_config
from protocols.errors import NotFoundError, PlanError
from protocols.fsm import PHASE_PLANNED, Event, Source, Status
from protocols.fsm import Transition as FsmTransition
from protocols.plan import Plan
from protocols.records import OutboxItem, Task, TaskWaiting
from protocols.signals import SIGNAL_TYPES, Body, decode_payload

__all__ = ["AgentStart", "Effect", "OutboxRunner", "RunnerProject", "TaskAgents", "is_stale"]

log = logging.getLogger(__name__)

_MAX_ROUNDS = 50  # drains in a row (a chained Transition adds an item); a bound, not a limit ever reached
_STEPS = {
    "enter_planning": "starting its planner",
    "enter_ready": "taking its plan",
    "enter_implementing": "starting its implementation",
    "enter_reviewing": "starting its reviewer",
    "enter_verifying": "starting its readiness check",
    "enter_done": "stopping its agents",
    "enter_cancelled": "stopping its agents",
}


class Effect(msgspec.Struct, frozen=True):
    """The payload of an `enter_<status>` outbox item, as the store writes it (actors/store/lifecycle.py)."""

    event: str
    from_status: str
    to_status: str
    phase: str
    source: str

    def transition(self) -> FsmTransition:
        return FsmTransition(Status(self.from_status), Event(self.event), Status(self.to_status), self.phase)


def is_stale(task: Task, effect: Effect, item: OutboxItem) -> bool:
    """True when the task has left the status the item is about (or entered it again since)."""
    stamp = getattr(task, f"{effect.to_status}_at", "")
    return task.status != effect.to_status or stamp != item.created_at


class OutboxRunner:
    """Performs one project's outbox items. Not thread-safe: use it on the thread that opened `store`."""

    def __init__(self, store: Store, project: RunnerProject, agents: TaskAgents) -> None:
        self.store = store
        self.project = project
        self.agents = agents
        self.waves = WaveKeeper(store, project, agents)
        self.steps = StepKeeper(store, project, agents)  # type: ignore[arg-type]  # the Project is a StepHost
        self.done = 0
        self.failed = 0

    def drain(self, limit: int = 100) -> int:
        """Perform every pending item of the project, oldest first; the number settled."""
        settled = 0
        for _ in range(_MAX_ROUNDS):
            items = self.store.pending_outbox(project_id=self.project.id, limit=limit)
            if not items:
                break
            for item in items:
                self.run(item)
                settled += 1
        return settled

    def run(self, item: OutboxItem) -> None:
        """Perform one item and settle it: done after its effects succeeded, failed with the reason — and
        then its task waits for a person, saying so where people look (`corral task list`), with the
        command that runs the step again once the cause is fixed."""
        try:
            self.perform(item)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("project %s: outbox item %s failed: %s", self.project.name, item.key, reason)
            self.failed += 1
            self.store.fail_outbox(item.id, reason)
            self._audit(
                "outbox_failed",
                f"{item.task}: {item.kind} ({item.key}) failed: {reason}",
                item,
                level="error",
            )
            self._wait_after_failure(item, reason)
            return
        self.done += 1
        self.store.complete_outbox(item.id)

    def _wait_after_failure(self, item: OutboxItem, reason: str) -> None:
        if not item.kind.startswith("enter_") or not item.task:
            return
        try:
            task = self.store.get_task(self.project.id, item.task)
        except NotFoundError:
            return
        step = _STEPS.get(item.kind, item.kind)
        waiting = TaskWaiting(
            reason=f"{step} failed: {reason}",
            commands=(f"corral task retry {task.name}", f"corral task transition {task.name} cancel"),
            kind="start_failed",
        )
        self.store.set_task_waiting(task, waiting)

    # -- one item -------------------------------------------------------------------------------------------

    def perform(self, item: OutboxItem) -> None:
        """Carry out `item`'s effects; raises what went wrong."""
        if item.kind in WAVE_ITEM_KINDS:
            self.waves.on_item(item)
            return
        if not item.kind.startswith("enter_"):
            raise NotImplementedError(f"unknown outbox item kind {item.kind!r}")
        effect = msgspec.json.decode(item.payload, type=Effect)
        try:
            task = self.store.get_task(self.project.id, item.task)
        except NotFoundError:
            return  # deleted since: nothing to start or stop for it
        if is_stale(task, effect, item):
            log.info(
                "project %s: %s is stale (%s is %s now)", self.project.name, item.key, task.name, task.status
            )
            return
        change = effect.transition()
        config = load_config(Path(self.project.root))
        task, problem = self._take_plan(task, change, item)
        plan: Plan | None = None
        if not problem:
            try:
                plan = stages.read_plan(task.content, task.name)
            except PlanError as exc:
                problem = str(exc)
        actions = stages.on_enter(task, change, plan, config, plan_problem=problem)
        keep = _started_by(item, task, actions)
        for action in actions:
            self._act(action, item, config, task, plan, keep)

    def _take_plan(self, task: Task, change: FsmTransition, item: OutboxItem) -> tuple[Task, str]:
        """On planner_finished: store the plan the signal carried as the task's content (idempotent)."""
        if change.event is not Event.PLANNER_FINISHED or task.phase != PHASE_PLANNED:
            return task, ""
        body = ""
        if item.signal_id is not None:
            signal = self.store.get_signal(item.signal_id)
            decoded = decode_payload(SIGNAL_TYPES[signal.signal_type], signal.payload)
            body = decoded.body if isinstance(decoded, Body) else ""
        intake = stages.accept_plan(task.name, body)
        if intake.content and intake.content != task.content:
            task = self.store.update_content(self.project.id, task.name, intake.content)
        return task, intake.problem

    def _act(
        self,
        action: stages.Action,
        item: OutboxItem,
        config: Config,
        task: Task,
        plan: Plan | None,
        keep: Callable[[str], bool],
    ) -> None:
        match action:
            case stages.StopAgents(task=name, titles=titles, reason=reason):
                for title in titles or self.agents.task_agent_titles(name, keep):
                    if self.agents.stop_task_agent(title, reason):
                        self._audit(
                            "task_agent_stopped", f"{name}: stopped {title} ({reason})", item, instance=title
                        )
            case stages.StartAgent():
                agent = msgspec.structs.replace(AgentStart.of(action, config), attempt_key=step_key(item.key))
                if self.agents.start_task_agent(agent, item.created_at):
                    message = f"{action.task}: started {action.title} ({action.agent_type}, {agent.program})"
                    self._audit("task_agent_started", message, item, instance=action.title)
                    self._stop_if_over(item, action.title)
            case stages.WaitForPerson(reason=reason, commands=commands, kind=kind):
                self.store.set_task_waiting(task, TaskWaiting(reason=reason, commands=commands, kind=kind))
            case stages.StartWaves():
                if plan is not None:
                    self.waves.begin(task, plan, config, item.created_at)
            case stages.Transition(task=name, event=event, body=body):
                # The task moves on at once; its own outbox item is found by the next round of `drain`. A
                # crash before this item is marked leaves it stale, so the transition is never made twice.
                self.store.transition_task(self.project.id, name, event, source=Source.CORRAL, payload=body)

    def _stop_if_over(self, item: OutboxItem, title: str) -> None:
        """The task moved on while its agent was starting (a cancel committed meanwhile): stop the agent now,
        rather than leave it working on a step that is over until the next item is carried out."""
        try:
            task = self.store.get_task(self.project.id, item.task)
        except NotFoundError:
            task = None
        effect = msgspec.json.decode(item.payload, type=Effect)
        over = task is None or is_stale(task, effect, item)
        if over and self.agents.stop_task_agent(title, "its step was over before it started"):
            self._audit("task_agent_stopped", f"{item.task}: stopped {title} (its step is over)", item)

    def _audit(
        self, kind: str, message: str, item: OutboxItem, *, level: str = "info", instance: str = ""
    ) -> None:
        self.store.record_audit(
            self.project.id,
            kind,
            message,
            task=item.task,
            instance=instance,
            level=level,
            detail={"outbox": item.key},
            signal_id=None,
        )


def _started_by(item: OutboxItem, task: Task, actions: tuple[stages.Action, ...]) -> Callable[[str], bool]:
    """Which attempt keys belong to agents this item starts itself (kept when it stops the task's agents):
    its stage agent's `step:<item key>`, and, when it starts waves, the wave agents of the implementing round
    it begins (`<implementing_at>#<attempt>`)."""
    own = step_key(item.key)
    waves = any(isinstance(action, stages.StartWaves) for action in actions)
    round_prefix = f"{task.implementing_at}#"
    return lambda key: key == own or (waves and bool(task.implementing_at) and key.startswith(round_prefix))
