"""Watching each task's current step: it always has a live agent doing it, or a reason it waits, shown.

    keeper = StepKeeper(store, project, agents)    # on the Project's thread, beside the outbox runner
    keeper.reconcile(now)                          # every tick (1 s): every task in a live step

A task in planning, implementing, reviewing or verifying is somebody's work. The outbox runner starts that
somebody once, when the task enters the status; everything that can go wrong afterwards is seen here, within
a tick, and either mended or shown where a person looks (`corral task list`, `show`, the API):

- missing (never recorded for this step: the daemon died between commit and start, or a person deleted
  it): started again, audited `task_agent_restarted`;
- recorded running, but no Instance holds it (lost in a restart): brought back as a daemon restart would;
- running or loading: nothing, and a wait about it is cleared;
- waiting (a permission prompt, a question, a hang): the task waits, "<agent> waits: <reason>";
- idle at its prompt without having sent its step's signal: nudged once after `ui.idle_nudge_s`, then the
  task waits;
- ended (exited, failed) without its signal: the task waits, with `corral instance restart <agent>`;
- paused: the task waits, with `corral instance resume <agent>`.

A crashed agent needs nothing here: its Instance restarts it, continuing its conversation, and tells it its
task again (actors/instance.py). Wave tasks' agents are started, settled and retried by the wave keeper; here
they are only watched for being idle or waiting. A step waiting on a person for another reason (a wave
decision, the review-cycle limit) keeps its own question: agent waits never replace it (`replacing`).

Why a watcher on the Project's thread, and not the Instance: the Instance knows its agent, not the task, and
whether the step's signal was sent is the store's to say. The Project knows both at once, and starting an
agent again is its own work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import msgspec

from actors.store import Store
from actors.task_agents import AgentStart, RunnerProject, step_key
from protocols import prompts, stages
from protocols.config import Config, load_config
from protocols.errors import NotFoundError, PlanError
from protocols.fsm import Event, Status
from protocols.fsm import Transition as FsmTransition
from protocols.records import InstanceRecord, OutboxItem, Task, TaskWaiting

__all__ = ["AGENT_WAITS", "AgentSight", "StepHost", "StepKeeper", "manual_finish"]

log = logging.getLogger(__name__)

LIVE_STEPS = ("planning", "implementing", "reviewing", "verifying")
AGENT_WAITS = frozenset({"agent_waiting", "agent_idle", "agent_ended", "agent_paused", "agent_lost"})
"""The waits this watcher sets, and so may clear; another keeper's question is never touched."""

_FINISHING: dict[str, tuple[str, ...]] = {
    "planner": ("planner_finished",),
    "coder": ("implement_finished",),
    "fixer": ("implement_finished",),
    "reviewer": ("review_approved", "review_changes_requested"),
    "readiness": ("verify_approved", "verify_failed"),
}
_MANUAL: dict[str, tuple[str, ...]] = {
    "planner": ("update-content {task} --file PLAN.md", "transition {task} planner_finished"),
    "coder": ("transition {task} implement_finished",),
    "fixer": ("transition {task} implement_finished",),
    "reviewer": ("transition {task} review_approved",),
    "readiness": ("transition {task} verify_approved",),
}


def manual_finish(agent_type: str, task: str) -> tuple[str, ...]:
    """What a person runs to finish a step by hand (having checked the work): `corral task …`."""
    return tuple(f"corral task {line.format(task=task)}" for line in _MANUAL.get(agent_type, ()))


class AgentSight(msgspec.Struct, frozen=True):
    """What the Project sees of one agent now: whether an Instance holds it, its status, since when."""

    live: bool
    status: str = ""
    reason: str = ""
    since: float = 0.0  # monotonic, on the tree's clock


class StepHost(Protocol):
    """What the watcher needs from the Project besides `TaskAgents` (called on the Project's thread)."""

    def start_task_agent(self, agent: AgentStart, since: str) -> bool: ...

    def agent_sight(self, title: str) -> AgentSight | None: ...

    def nudge(self, title: str, text: str) -> bool: ...

    def bring_back(self, record: InstanceRecord) -> None: ...


class StepKeeper:
    """Watches one project's tasks in a live step. Not thread-safe: use it on the thread that opened
    `store`."""

    def __init__(self, store: Store, project: RunnerProject, agents: StepHost) -> None:
        self.store = store
        self.project = project
        self.agents = agents
        self._nudged: dict[str, tuple[str, float]] = {}  # title → (its row's created_at, when)
        self._revived: dict[str, tuple[float, int]] = {}  # title → (last try, tries): bring_back backs off

    def reconcile(self, now: float) -> None:
        """Look at every task in a live step once (see the module doc). Never raises for one task."""
        config: Config | None = None
        for task in self.store.list_tasks(self.project.id, statuses=LIVE_STEPS):
            try:
                config = config or load_config(Path(self.project.root))
                self._watch(task, config, now)
            except Exception as exc:  # one task's trouble must not stop the others
                log.warning("project %s: watching %s: %s", self.project.name, task.name, exc)

    # -- one task ----------------------------------------------------------------------------------------

    def _watch(self, task: Task, config: Config, now: float) -> None:
        stamp = getattr(task, f"{task.status}_at")
        item = self.store.step_item(self.project.id, task.name, task.status, stamp)
        if item is None:
            self._wait(
                task,
                f"{task.name} is {task.status}, but no step was started for it (its status was set by hand)",
                (f"corral task retry {task.name}", f"corral task transition {task.name} cancel"),
                "no_step",
            )
            return
        if item.status != "done":
            return  # pending: the runner carries it out; failed: the runner said why the task waits
        actions = self._actions(task, item, config)
        if any(isinstance(a, stages.WaitForPerson) for a in actions):
            return  # the runner set the question; it stands until the task moves
        for action in actions:
            if isinstance(action, stages.StartAgent):
                self._watch_agent(task, item, action, config, now)
            elif isinstance(action, stages.StartWaves):
                self._watch_waves(task, config, now)

    def _actions(self, task: Task, item: OutboxItem, config: Config) -> tuple[stages.Action, ...]:
        """What entering the current step decided: the same pure decision the runner carried out."""
        from actors.tasks import Effect

        effect = msgspec.json.decode(item.payload, type=Effect)
        change = FsmTransition(
            Status(effect.from_status), Event(effect.event), Status(effect.to_status), effect.phase
        )
        try:
            plan = stages.read_plan(task.content, task.name)
        except PlanError:
            return ()
        return stages.on_enter(task, change, plan, config)

    def _watch_waves(self, task: Task, config: Config, now: float) -> None:
        """The running wave tasks' agents, for being idle or waiting (the wave keeper does the rest)."""
        for row in self.store.list_wave_tasks(task.id):
            if row.status != "running" or not row.title:
                continue
            record = self._recorded(row.title)
            if record is None:
                continue
            queued = self.store.wave_finish_queued(
                self.project.id, task.name, row.wave_number, row.task_number
            )
            finish = prompts.finish_commands("coder", task.name, row.wave_number, row.task_number)
            manual = (
                f"corral signal emit implement_task_finished {task.name} --payload "
                f"""'{{"wave_number": {row.wave_number}, "task_number": {row.task_number}}}'""",
            )
            self._watch_live(task, record, finish, manual, queued, config, now)

    def _watch_agent(
        self, task: Task, item: OutboxItem, action: stages.StartAgent, config: Config, now: float
    ) -> None:
        record = self._recorded(action.title)
        if record is None or record.attempt_key != step_key(item.key):
            agent = msgspec.structs.replace(AgentStart.of(action, config), attempt_key=step_key(item.key))
            if self.agents.start_task_agent(agent, item.created_at):
                self._audit(task, "task_agent_restarted", f"started {action.title} again: it was missing")
            return
        queued = self._signal_queued(task, action.agent_type)
        finish = prompts.finish_commands(action.agent_type, task.name)
        manual = manual_finish(action.agent_type, task.name)
        sight = self.agents.agent_sight(action.title)
        if sight is not None and sight.live:
            self._watch_live(task, record, finish, manual, queued, config, now)
            return
        if queued:
            return  # it signalled, then ended: the signal moves the task
        title = action.title
        if record.status in ("exited", "failed"):
            self._wait(
                task,
                f"{title} ended without signalling that its step is done ({record.status}: {record.reason})",
                (f"corral instance restart {title}", *manual),
                "agent_ended",
                title,
            )
        elif record.status == "paused":
            self._wait(
                task,
                f"{title} is paused",
                (f"corral instance resume {title}", *manual),
                "agent_paused",
                title,
            )
        else:  # recorded as running, yet no Instance holds it: lost in a restart
            last, tries = self._revived.get(title, (0.0, 0))
            if tries and now - last < min(60.0, 2.0**tries):
                return  # tried a moment ago: back off, rather than hammer a start that keeps failing
            self._revived[title] = (now, tries + 1)
            try:
                self.agents.bring_back(record)
            except Exception as exc:
                self._wait(
                    task,
                    f"{title} was lost and cannot be brought back: {exc}",
                    (f"corral instance restart {title}", *manual),
                    "agent_lost",
                    title,
                )
            else:
                self._audit(task, "task_agent_restarted", f"brought {title} back: no instance held it")

    def _watch_live(
        self,
        task: Task,
        record: InstanceRecord,
        finish: tuple[str, ...],
        manual: tuple[str, ...],
        queued: bool,
        config: Config,
        now: float,
    ) -> None:
        title = record.title
        sight = self.agents.agent_sight(title)
        if sight is None or not sight.live:
            return
        if sight.status == "waiting":
            commands = (f"corral instance attach {title}", f"corral instance capture {title}", *manual)
            self._wait(task, f"{title} waits: {sight.reason}", commands, "agent_waiting", title)
            return
        if sight.status != "ready" or queued:
            self._clear(task, title)
            return
        idle_s = now - sight.since
        nudge_s = config.ui.idle_nudge_s
        nudged = self._nudged.get(title)
        if nudged is not None and nudged[0] != record.created_at:
            nudged = None  # an earlier agent of that title
        if nudge_s and nudged is None:
            if idle_s >= nudge_s and finish and self.agents.nudge(title, prompts.nudge_prompt(finish)):
                self._nudged[title] = (record.created_at, now)
                self._audit(task, "agent_nudged", f"nudged {title}: idle {idle_s:.0f} s without its signal")
            return
        if nudged is not None and now - nudged[1] < nudge_s:
            return
        after = f", nudged {now - nudged[1]:.0f} s ago" if nudged is not None else ""
        reason = f"{title} is idle at its prompt and has not signalled that its step is done{after}"
        commands = (f"corral instance attach {title}", f"corral instance send {title} 'TEXT'", *manual)
        self._wait(task, reason, commands, "agent_idle", title)

    # -- helpers -----------------------------------------------------------------------------------------

    def _signal_queued(self, task: Task, agent_type: str) -> bool:
        kinds = _FINISHING.get(agent_type, ())
        queued = self.store.list_signals(
            self.project.id, statuses=("pending", "processing"), task=task.name, limit=50
        )
        return any(signal.signal_type in kinds for signal in queued)

    def _recorded(self, title: str) -> InstanceRecord | None:
        try:
            return self.store.get_instance(self.project.name, title)
        except NotFoundError:
            return None

    def _wait(self, task: Task, reason: str, commands: tuple[str, ...], kind: str, agent: str = "") -> None:
        waiting = TaskWaiting(reason=reason, commands=commands, kind=kind, agent=agent)
        self.store.set_task_waiting(task, waiting, replacing=AGENT_WAITS | {"no_step"})

    def _clear(self, task: Task, title: str) -> None:
        """The agent works again: a wait about it is over (another agent's, or another keeper's, stays)."""
        if task.waiting is not None and task.waiting.kind in AGENT_WAITS and task.waiting.agent == title:
            self.store.set_task_waiting(task, None, replacing=AGENT_WAITS)

    def _audit(self, task: Task, kind: str, message: str) -> None:
        self.store.record_audit(
            self.project.id, kind, f"{task.name}: {message}", task=task.name, level="info"
        )
