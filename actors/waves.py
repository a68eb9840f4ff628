"""Running a task's waves: the wave scheduler (`protocols.waves.WaveRun`) driven by events, kept in the store.

    keeper = WaveKeeper(store, project, agents)  # on the Project's thread, beside the outbox runner
    keeper.begin(task, plan, config, since)      # StartWaves: rows written, wave 1's first tasks started
    keeper.on_item(item)                         # wave_task_finished | start_wave | retry_wave | advance_wave
    keeper.agent_ended(ended)                    # a wave task's agent ended (the Instance tells the Project)
    keeper.reconcile()                           # every tick and after a restart: the truth of the agents

Every event goes the same way: the run is loaded (from memory, or from the `wave_tasks` rows after a restart),
the pure scheduler decides a `Step`, the rows it changed are written in one transaction, and only then are its
actions carried out — agents started and stopped, audit rows written, `implement_finished` applied after the
last wave. The rows are the state: a daemon killed between the write and the actions finds, at its next start,
a running row with no agent of that attempt (`reconcile` starts it), or a wave whose tasks are all terminal
(`WaveRun.from_records` settles it again and reports the outcome once more).

Exactly once. A wave task's agent is `<task>-W<w>-T<t>`, and it carries its attempt's key,
`<task's implementing_at>#<attempt>` (`_attempt_key`), in its instance row and its `AgentEnded`. The row's
attempt count is written when the attempt starts, before its agent, so `reconcile` never starts a second agent
for an attempt, and the end of an earlier attempt's (or round's) agent changes nothing. Keys are compared for
equality, never stamps for order: a wall clock that steps back cannot make one attempt look like another.

Why a keeper on the Project's thread rather than a Wave actor per wave (DESIGN.md): starting a wave task's
agent is the Project's own work, and a child Wave actor could only *tell* the Project to do it (never ask: the
deadlock rule), which would split one decision — "this slot is free, start that task" — across two inboxes and
two crash windows. Here the decision and the start are one call on one thread, and the scheduler itself is
a pure state machine that tests drive without threads. The durable state is the store's, as for the task FSM.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from actors.store import Store
from actors.task_agents import AgentStart, RunnerProject, TaskAgents
from protocols import stages
from protocols.config import Config, load_config, resolve_resources
from protocols.errors import ConflictError, NotFoundError, PlanError
from protocols.fsm import Event, Source, Status
from protocols.plan import Plan
from protocols.records import InstanceRecord, OutboxItem, Task, TaskWaiting, WaveTaskRecord
from protocols.signals import WaveDecision, WaveStart, WaveTaskFinished
from protocols.waves import (
    AllWavesDone,
    AwaitConfirmation,
    AwaitDecision,
    StartTask,
    Step,
    StopTasks,
    WaveAction,
    WaveDone,
    WaveFailed,
    WaveRun,
    WavesAborted,
)

if TYPE_CHECKING:
    from actors.instance import AgentEnded

__all__ = ["WAVE_ITEM_KINDS", "WaveKeeper"]

log = logging.getLogger(__name__)

WAVE_ITEM_KINDS = frozenset({"wave_task_finished", "start_wave", "retry_wave", "advance_wave"})
"""Outbox kinds the store writes for wave signals (actors/store/applying.py)."""

_ENDED = frozenset({"exited", "failed"})
_OUTCOME_KINDS = frozenset({"wave_done", "wave_failed"})
_AWAITING = frozenset({"awaiting_confirmation", "awaiting_decision"})
_WAVE_WAITS = frozenset({"wave_confirmation", "wave_decision"})


class _Loaded(msgspec.Struct):
    run: WaveRun
    plan: Plan
    since: str  # the task's implementing_at this run belongs to


class WaveKeeper:
    """The waves of one project's tasks. Not thread-safe: use it on the thread that opened `store`."""

    def __init__(self, store: Store, project: RunnerProject, agents: TaskAgents) -> None:
        self.store = store
        self.project = project
        self.agents = agents
        self._runs: dict[str, _Loaded] = {}
        self._replaying: Task | None = None  # a run rebuilt from its rows is settling: its outcome was said

    # -- events ----------------------------------------------------------------------------------------------

    def begin(self, task: Task, plan: Plan, config: Config, since: str) -> None:
        """StartWaves, from the `enter_implementing` item created at `since`: write the plan's wave tasks (all
        pending) and start wave 1. A re-run of the item finds rows written for it and resumes them instead."""
        rows = self.store.list_wave_tasks(task.id)
        if rows and _current(rows, since):
            self._load(task, force=True)
            return
        self.store.set_wave_tasks(
            task.id,
            [
                (wave.number, item.number, stages.wave_task_title(task.name, wave.number, item.number))
                for wave in plan.waves
                for item in wave.tasks
            ],
        )
        settings = _settings(config)
        run = WaveRun.begin(task.name, plan, cap=settings[0], auto_advance=settings[1])
        self._runs[task.name] = _Loaded(run, plan, task.implementing_at)
        self._audit(
            task.name,
            "waves_started",
            f"{task.name}: {len(plan.waves)} waves, {plan.task_count} tasks"
            + (f", at most {run.cap} at once" if run.cap else ""),
        )
        self._carry(task, run.start_wave(1))

    def on_item(self, item: OutboxItem) -> None:
        """A wave signal's outbox item. Raises ConflictError when the task has no waves to act on."""
        task = self._task(item.task)
        if task is None or task.status != Status.IMPLEMENTING:
            state = "deleted" if task is None else task.status
            log.info(
                "project %s: %s for %s ignored: it is %s", self.project.name, item.kind, item.task, state
            )
            return
        loaded = self._load(task)
        if loaded is None:
            raise ConflictError(
                f"{item.kind.replace('_', ' ')} for {task.name}: it is not running waves (its plan is "
                f"implemented by one coder, or it has no plan)"
            )
        run = loaded.run
        match item.kind:
            case "wave_task_finished":
                done = msgspec.json.decode(item.payload, type=WaveTaskFinished)
                if self._by_person(item):
                    step = run.mark_complete(done.wave_number, done.task_number)
                else:
                    step = run.task_finished(done.wave_number, done.task_number)
            case "start_wave":
                wave = msgspec.json.decode(item.payload, type=WaveStart).wave_number
                step = run.start_wave(wave)
            case "retry_wave":
                step = run.retry_failed(_decision(item).wave_number)
            case "advance_wave":
                step = run.advance(_decision(item).wave_number)
            case _:
                raise NotFoundError(f"unknown wave item kind {item.kind!r}")
        self._carry(task, step, signal_id=item.signal_id)

    def agent_ended(self, ended: AgentEnded) -> None:
        """A task's agent exited or failed. Only the agent of a wave task's current attempt counts."""
        task = self._task(ended.task)
        if task is None or task.status != Status.IMPLEMENTING:
            return
        loaded = self._load(task)
        if loaded is None:
            return
        row = _row_of(self.store.list_wave_tasks(task.id), ended.title)
        if row is None or row.status != "running" or ended.attempt_key != _attempt_key(task, row):
            return  # not a wave task, not running, or an earlier attempt's (or round's) agent
        if self._finish_queued(task, row):
            return  # it signalled, then ended before the signal was applied: the signal completes it
        self._carry(
            task, _ended_step(loaded.run, row, ended.status, ended.reason, ended.worked, ended.killed)
        )

    def reconcile(self) -> None:
        """Check every implementing task's running wave tasks against their agents: start the agent of an
        attempt that has none (a crash between the row and the start), settle one whose agent ended while
        nobody listened. Cheap: a few indexed reads per implementing task."""
        implementing = self.store.list_tasks(self.project.id, statuses=("implementing",))
        for task in implementing:
            try:
                loaded = self._load(task)
                if loaded is not None:
                    self._check_agents(task, loaded)
            except Exception as exc:  # one task's trouble must not stop the others
                log.warning("project %s: waves of %s: %s", self.project.name, task.name, exc)
        live = {task.name for task in implementing}
        for name in [n for n in self._runs if n not in live]:
            del self._runs[name]

    # -- loading ---------------------------------------------------------------------------------------------

    def _load(self, task: Task, *, force: bool = False) -> _Loaded | None:
        """The task's run: cached, or rebuilt from its rows (whose settle actions are carried out, so a run
        that a crash left mid-step finishes it). None when the task runs no waves in this implementing."""
        cached = self._runs.get(task.name)
        if cached is not None and cached.since == task.implementing_at and not force:
            return cached
        rows = self.store.list_wave_tasks(task.id)
        if not rows or not _current(rows, task.implementing_at):
            self._runs.pop(task.name, None)
            return None
        try:
            plan = stages.read_plan(task.content, task.name)
        except PlanError as exc:
            log.warning(
                "project %s: %s has wave tasks but its plan cannot be read: %s",
                self.project.name,
                task.name,
                exc,
            )
            return None
        if plan is None:
            return None
        cap, auto_advance = _settings(self._config())
        step = WaveRun.from_records(task.name, plan, rows, cap=cap, auto_advance=auto_advance)
        loaded = _Loaded(step.run, plan, task.implementing_at)
        self._runs[task.name] = loaded
        if step.run.phase == "idle":
            step = step.run.start_wave(1)  # rows written, then killed before wave 1 started
        self._replaying = task
        try:
            self._carry(task, step)
        finally:
            self._replaying = None
        return self._runs.get(task.name)

    def _check_agents(self, task: Task, loaded: _Loaded) -> None:
        rows = {row.task_number: row for row in self.store.list_wave_tasks(task.id)}
        for row in rows.values():
            over = row.wave_number < loaded.run.current or loaded.run.phase == "done"
            if over and row.status in ("complete", "failed") and self.agents.running_agent(row.title):
                self.agents.stop_task_agent(row.title, f"wave {row.wave_number} is over")
        for item in loaded.run.wave_tasks(loaded.run.current):
            row = rows.get(item.number)
            if row is None or row.status != "running" or item.status.value != "running":
                continue
            title = stages.wave_task_title(task.name, item.wave, item.number)
            recorded = self._recorded(title)
            this_attempt = recorded is not None and recorded.attempt_key == _attempt_key(task, row)
            if self.agents.running_agent(title) and this_attempt and not _over(recorded):
                continue  # alive (or restarting after a crash), or its AgentEnded is on the way
            if this_attempt and recorded is not None and recorded.status in _ENDED:
                if self._finish_queued(task, row):
                    continue  # it signalled, then ended: the signal completes it
                step = _ended_step(
                    loaded.run, row, recorded.status, recorded.reason, recorded.worked, killed=False
                )
                self._carry(task, step)
                loaded = self._runs.get(task.name) or loaded
            elif this_attempt and recorded is not None and recorded.status != "paused":
                reason = f"its agent {title} was lost (recorded {recorded.status}, not running)"
                self._carry(task, loaded.run.task_failed(item.wave, item.number, reason))
                loaded = self._runs.get(task.name) or loaded
            elif not this_attempt:
                self._start(task, loaded, item.wave, item.number, row)

    # -- carrying out a step ---------------------------------------------------------------------------------

    def _carry(self, task: Task, step: Step, signal_id: int | None = None) -> None:
        """Persist what the step changed, then do its actions in order."""
        loaded = self._runs.get(task.name)
        if loaded is None:
            return
        if step.refusal:
            self._audit(task.name, "wave_refused", step.refusal, level="warn", signal_id=signal_id)
            return
        if step.note:
            log.info("project %s: %s", self.project.name, step.note)
        before = loaded.run
        rows: dict[int, WaveTaskRecord] = {}  # a StartTask always comes with its task's row changed
        if step.changed:
            saved = self.store.save_wave_tasks(
                task.id,
                [
                    (
                        t.number,
                        t.status.value,
                        t.attempts,
                        stages.wave_task_title(task.name, t.wave, t.number) if t.attempts else "",
                    )
                    for t in step.changed
                ],
            )
            rows = {row.task_number: row for row in saved}
        loaded.run = step.run
        announced = before.current if before.phase != "idle" else 0
        try:
            self._act_all(task, loaded, step, rows, announced)
        except BaseException:
            # The rows are written; the run is rebuilt from them at the next event or tick and its outcome
            # (a transition that failed, an agent not started) is carried out again.
            self._runs.pop(task.name, None)
            raise
        if before.phase in _AWAITING and step.run.phase not in _AWAITING:
            self.store.set_task_waiting(task, None, replacing=_WAVE_WAITS)  # the question was answered

    def _act_all(
        self, task: Task, loaded: _Loaded, step: Step, rows: dict[int, WaveTaskRecord], announced: int
    ) -> None:
        for action in step.actions:
            if isinstance(action, StartTask) and action.wave != announced:
                announced = action.wave  # after the previous wave's outcome, before its first agent
                stats = step.run.statistics(action.wave)
                self._audit(
                    task.name,
                    "wave_started",
                    f"{task.name}: wave {stats.wave} of {stats.waves} started ({stats.total} tasks)",
                    wave=stats.wave,
                )
            self._act(task, loaded, action, rows)

    def _act(self, task: Task, loaded: _Loaded, action: WaveAction, rows: dict[int, WaveTaskRecord]) -> None:
        name = task.name
        match action:
            case StartTask(wave=wave, task_number=number):
                row = rows.get(number)
                if row is not None:
                    self._start(task, loaded, wave, number, row)
            case StopTasks(wave=wave, task_numbers=numbers, reason=reason):
                for number in numbers:
                    self.agents.stop_task_agent(stages.wave_task_title(name, wave, number), reason)
            case WaveDone(wave=wave, total=count):
                self._audit(
                    name, "wave_done", f"{name}: wave {wave} complete ({count}/{count} tasks)", wave=wave
                )
            case WaveFailed(wave=wave, failed=failed, complete=complete, total=total):
                numbers = ", ".join(map(str, failed))
                message = f"{name}: wave {wave} over: {complete}/{total} complete, task {numbers} failed"
                self._audit(name, "wave_failed", message, level="warn", wave=wave)
            case AwaitConfirmation(message=message, commands=commands):
                waiting = TaskWaiting(reason=message, commands=commands, kind="wave_confirmation")
                self.store.set_task_waiting(task, waiting, replacing=_WAVE_WAITS)
            case AwaitDecision(message=message, commands=commands):
                waiting = TaskWaiting(reason=message, commands=commands, kind="wave_decision")
                self.store.set_task_waiting(task, waiting, replacing=_WAVE_WAITS)
            case AllWavesDone(waves=waves):
                self._audit(name, "waves_done", f"{name}: all {waves} waves done")
                self.store.transition_task(
                    self.project.id,
                    name,
                    Event.IMPLEMENT_FINISHED,
                    source=Source.CORRAL,
                    payload=f"all {waves} waves are done",
                )
            case WavesAborted(wave=wave, reason=reason):
                self._audit(name, "waves_aborted", f"{name}: waves aborted in wave {wave}: {reason}", "warn")

    def _start(self, task: Task, loaded: _Loaded, wave: int, number: int, row: WaveTaskRecord) -> None:
        action = stages.wave_task_agent(task.name, loaded.plan, wave, number)
        try:
            agent = AgentStart.of(action, self._config())
            agent = msgspec.structs.replace(agent, attempt_key=_attempt_key(task, row))
            started = self.agents.start_task_agent(agent, row.updated_at)
        except Exception as exc:
            reason = f"its agent could not start: {exc}"
            self._audit(
                task.name, "task_agent_failed", f"{task.name}: {action.title}: {reason}", "error", wave
            )
            self._carry(task, self._runs[task.name].run.task_failed(wave, number, reason))
            return
        if started:
            message = f"{task.name}: started {action.title} (wave {wave}, task {number}, {agent.program})"
            self._audit(task.name, "task_agent_started", message, wave=wave, instance=action.title)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _task(self, name: str) -> Task | None:
        try:
            return self.store.get_task(self.project.id, name)
        except NotFoundError:
            return None

    def _finish_queued(self, task: Task, row: WaveTaskRecord) -> bool:
        """The task's implement_task_finished is queued (pending or being applied): an agent that signalled
        and ended at once (a quiet print-mode agent) did its work, whatever its screen showed; the signal, not
        the end, decides."""
        return self.store.wave_finish_queued(self.project.id, task.name, row.wave_number, row.task_number)

    def _by_person(self, item: OutboxItem) -> bool:
        if item.signal_id is None:
            return False
        return self.store.get_signal(item.signal_id).source == Source.USER

    def _recorded(self, title: str) -> InstanceRecord | None:
        try:
            return self.store.get_instance(self.project.name, title)
        except NotFoundError:
            return None

    def _config(self) -> Config:
        return load_config(Path(self.project.root))

    def _said(self, task: str, kind: str, message: str) -> bool:
        """While a rebuilt run settles: the same outcome row was written in this round already (a restart
        asks its question again in the UIs, not again in the log)."""
        replaying = self._replaying
        if replaying is None or replaying.name != task or kind not in _OUTCOME_KINDS:
            return False
        rows = self.store.list_audit(self.project.id, task=task, limit=200)
        return any(
            r.kind == kind and r.message == message and r.ts >= replaying.implementing_at for r in rows
        )

    def _audit(
        self,
        task: str,
        kind: str,
        message: str,
        level: str = "info",
        wave: int | None = None,
        *,
        instance: str = "",
        signal_id: int | None = None,
    ) -> None:
        if self._said(task, kind, message):
            return
        self.store.record_audit(
            self.project.id,
            kind,
            message,
            task=task,
            level=level,
            wave=wave,
            instance=instance,
            signal_id=signal_id,
        )


def _settings(config: Config) -> tuple[int, bool]:
    """(max_parallel_wave_tasks, auto_advance_waves) as the config says now."""
    return resolve_resources(config.resources).max_parallel_wave_tasks, config.ui.auto_advance_waves


def _current(rows: list[WaveTaskRecord], since: str) -> bool:
    """Rows written for the implementing that began at `since` (older ones belong to an earlier round)."""
    return any(row.updated_at >= since for row in rows)


def _attempt_key(task: Task, row: WaveTaskRecord) -> str:
    """Which attempt of a wave task an agent belongs to: the implementing round (the task's
    `implementing_at`) and the row's attempt count. Equal keys, not stamps compared, so a wall clock that
    steps back between writing the row and starting the agent cannot make an attempt look like another."""
    return f"{task.implementing_at}#{row.attempts}"


def _over(recorded: InstanceRecord | None) -> bool:
    """The recorded agent has ended for good (an ended Instance stays a child of its Project): it gave up, or
    it exited with status 0. Another exit is followed by a restart, so it is not over yet."""
    if recorded is None:
        return False
    return recorded.status == "failed" or _clean_exit(recorded.status, recorded.reason)


def _clean_exit(status: str, reason: str) -> bool:
    """The agent exited with status 0: it ended for good, as it meant to (any other exit is a crash)."""
    return status == "exited" and reason.startswith("exit status 0")


def _row_of(rows: list[WaveTaskRecord], title: str) -> WaveTaskRecord | None:
    return next((row for row in rows if row.title == title), None)


def _decision(item: OutboxItem) -> WaveDecision:
    return msgspec.json.decode(item.payload or b"{}", type=WaveDecision)


def _ended_step(
    run: WaveRun, row: WaveTaskRecord, status: str, reason: str, worked: bool, killed: bool
) -> Step:
    """What an agent's end means for its wave task: a clean exit (status 0) completes it if the agent had
    worked; a kill, a crash that was not restarted, or a give-up fails it, with the reason."""
    wave, number = row.wave_number, row.task_number
    if killed:
        return run.task_failed(wave, number, f"its agent was killed ({reason})")
    if _clean_exit(status, reason):
        return run.agent_exited_cleanly(wave, number, worked)
    return run.task_failed(wave, number, f"its agent {status}: {reason}" if reason else f"its agent {status}")
