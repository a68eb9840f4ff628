"""The wave scheduler as a pure state machine: which wave tasks run, which wait, and when a wave is over.

    run = WaveRun.begin("fix-login", plan, cap=2, auto_advance=True)
    step = run.start_wave(1)          # step.actions: StartTask(1, 1), StartTask(1, 2); task 3 stays pending
    step = step.run.task_finished(1, 1)   # StartTask(1, 3): a slot came free
    ...                                   # when every task of wave 1 is terminal: WaveDone(1), then
                                          # StartTask(2, …) | AwaitConfirmation(1) | AllWavesDone()

Each event returns a `Step`: the new `WaveRun`, the actions the Wave actor carries out (in order), and either
a `refusal` (the event does not apply: an unknown or wrong wave or task; the claimer writes it into the
signal's failed result and nothing changes) or a `note` (a harmless duplicate, such as a second
implement_task_finished for the same task: nothing changes and the signal is done). Nothing here reads a
clock, starts an agent or writes the store; `Step.changed` lists the task rows to persist, and
`WaveRun.from_records` puts a restarted daemon's waves back where they were.

    task:  pending ──start──▶ running ──finished | mark complete | clean exit after work──▶ complete
                                 └──agent failed | clean exit without work──▶ failed ──retry──▶ pending
    run:   idle ──start_wave──▶ running ──every task terminal──▶ (next wave's running) | awaiting_confirmation
                                   │                              | awaiting_decision | done
                                   └──abort──▶ aborted

Why promotions happen inside every event rather than on a timer: a slot frees exactly when a running task
reaches a terminal status, so deciding there means no wave can stall with a free slot and a pending task,
and no wave can overshoot its cap, whatever order finished signals and agent exits arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from protocols.plan import Plan
from protocols.records import WaveProgress, WaveTaskRecord, WaveTaskStatus

__all__ = [
    "AllWavesDone",
    "AwaitConfirmation",
    "AwaitDecision",
    "Phase",
    "StartTask",
    "Step",
    "StopTasks",
    "WaveAction",
    "WaveDone",
    "WaveFailed",
    "WaveRun",
    "WaveStats",
    "WaveTask",
    "WavesAborted",
    "decision_commands",
    "wave_progress",
]

Phase = Literal["idle", "running", "awaiting_confirmation", "awaiting_decision", "done", "aborted"]

_PENDING, _RUNNING = WaveTaskStatus.PENDING, WaveTaskStatus.RUNNING
_COMPLETE, _FAILED = WaveTaskStatus.COMPLETE, WaveTaskStatus.FAILED
_TERMINAL = frozenset({_COMPLETE, _FAILED})


# --- actions ----------------------------------------------------------------------------------------------


class StartTask(msgspec.Struct, frozen=True, tag=True):
    """Start the agent of task `task_number` (`stages.wave_task_agent`); `attempt` counts from 1."""

    wave: int
    task_number: int
    attempt: int


class StopTasks(msgspec.Struct, frozen=True, tag=True):
    """Stop the agents of these tasks (the wave is over, or aborted); stopping a gone agent is fine."""

    wave: int
    task_numbers: tuple[int, ...]
    reason: str


class WaveDone(msgspec.Struct, frozen=True, tag=True):
    """Outcome: every task of `wave` is complete."""

    wave: int
    total: int


class WaveFailed(msgspec.Struct, frozen=True, tag=True):
    """Outcome: every task of `wave` is terminal and these failed."""

    wave: int
    failed: tuple[int, ...]
    complete: int
    total: int


class AwaitConfirmation(msgspec.Struct, frozen=True, tag=True):
    """auto_advance_waves is off: ask a person before starting `next_wave` (advance_wave starts it);
    `commands` answer it."""

    wave: int
    next_wave: int
    message: str
    commands: tuple[str, ...] = ()


class AwaitDecision(msgspec.Struct, frozen=True, tag=True):
    """Tasks failed: a person retries them (retry_wave), goes on (advance_wave), marks a failed one complete
    (implement_task_finished, after fixing it by hand) or gives the task up (cancel); `commands` are those."""

    wave: int
    failed: tuple[int, ...]
    message: str
    commands: tuple[str, ...] = ()


def decision_commands(task: str, wave: int, failed: tuple[int, ...]) -> tuple[str, ...]:
    """The exact commands that answer a failed wave's question, in the order people weigh them."""
    payload = f'{{"wave_number": {wave}, "task_number": {failed[0]}}}'
    mark = f"corral signal emit implement_task_finished {task} --payload '{payload}'"
    return (
        f"corral signal emit retry_wave {task}",
        f"corral signal emit advance_wave {task}",
        mark,
        f"corral task transition {task} cancel",
    )


class AllWavesDone(msgspec.Struct, frozen=True, tag=True):
    """Nothing is left to run: the actor applies implement_finished (→ reviewing)."""

    waves: int


class WavesAborted(msgspec.Struct, frozen=True, tag=True):
    """The run was aborted; the task stays implementing and waits for a person."""

    wave: int
    reason: str


WaveAction = (
    StartTask
    | StopTasks
    | WaveDone
    | WaveFailed
    | AwaitConfirmation
    | AwaitDecision
    | AllWavesDone
    | WavesAborted
)


# --- state ------------------------------------------------------------------------------------------------


class WaveTask(msgspec.Struct, frozen=True):
    """One task of the plan as the scheduler sees it; `attempts` counts its starts."""

    wave: int
    number: int
    status: WaveTaskStatus = _PENDING
    attempts: int = 0
    reason: str = ""


class WaveStats(msgspec.Struct, frozen=True):
    """How a wave stands, for frontends: `run.statistics()`."""

    phase: Phase
    wave: int
    waves: int
    total: int
    pending: int
    running: int
    complete: int
    failed: int


class Step(msgspec.Struct, frozen=True):
    """What one event did: the new run, the actions to carry out, and a refusal or a note."""

    run: WaveRun
    actions: tuple[WaveAction, ...] = ()
    refusal: str = ""
    note: str = ""
    changed: tuple[WaveTask, ...] = ()
    """The tasks whose status or attempts changed: the rows to persist."""

    @property
    def applied(self) -> bool:
        return not self.refusal


class WaveRun(msgspec.Struct, frozen=True, kw_only=True):
    """The waves of one task's plan. Build it with `begin` or `from_records`; every event returns a Step."""

    task: str
    tasks: tuple[WaveTask, ...]
    waves: int
    current: int = 0
    phase: Phase = "idle"
    cap: int = 0
    """At most this many tasks of the current wave run at once; 0 = all of them."""
    auto_advance: bool = True

    # --- construction -------------------------------------------------------------------------------------

    @classmethod
    def begin(cls, task: str, plan: Plan, *, cap: int = 0, auto_advance: bool = True) -> WaveRun:
        """A run of `plan` with nothing started yet."""
        tasks = tuple(WaveTask(wave.number, t.number) for wave in plan.waves for t in wave.tasks)
        return cls(task=task, tasks=tasks, waves=len(plan.waves), cap=max(cap, 0), auto_advance=auto_advance)

    @classmethod
    def from_records(
        cls,
        task: str,
        plan: Plan,
        rows: Iterable[WaveTaskRecord],
        *,
        cap: int = 0,
        auto_advance: bool = True,
    ) -> Step:
        """Put a run back as the store recorded it, after a restart.

        The current wave is the last one with a task that ever started (none: idle). The run then settles as
        if its last event had just happened: free slots are filled, and a wave whose tasks are all terminal
        reports its outcome again (a decision or confirmation is asked again; a finished last wave gives
        AllWavesDone, which the lifecycle refuses harmlessly if implement_finished was already applied).
        Tasks recorded as running keep running: the actor checks their agents. Rows for tasks the plan does
        not have are ignored.
        """
        run = cls.begin(task, plan, cap=cap, auto_advance=auto_advance)
        by_number = {row.task_number: row for row in rows}
        tasks = []
        for item in run.tasks:
            row = by_number.get(item.number)
            if row is not None and row.wave_number == item.wave:
                status = WaveTaskStatus(row.status) if row.status in _STATUSES else _PENDING
                item = msgspec.structs.replace(item, status=status, attempts=max(row.attempts, 0))
            tasks.append(item)
        started = [t.wave for t in tasks if t.status is not _PENDING or t.attempts]
        run = msgspec.structs.replace(run, tasks=tuple(tasks))
        if not started:
            return Step(run)
        restored = msgspec.structs.replace(run, current=max(started), phase="running")
        return _settle(restored, restored, ())

    # --- queries ------------------------------------------------------------------------------------------

    def wave_tasks(self, wave: int) -> tuple[WaveTask, ...]:
        return tuple(t for t in self.tasks if t.wave == wave)

    def get(self, task_number: int) -> WaveTask | None:
        return next((t for t in self.tasks if t.number == task_number), None)

    def statistics(self, wave: int | None = None) -> WaveStats:
        """Counts for `wave` (default: the current one)."""
        number = self.current if wave is None else wave
        tasks = self.wave_tasks(number)
        count = {s: sum(t.status is s for t in tasks) for s in WaveTaskStatus}
        return WaveStats(
            self.phase,
            number,
            self.waves,
            len(tasks),
            count[_PENDING],
            count[_RUNNING],
            count[_COMPLETE],
            count[_FAILED],
        )

    # --- starting and deciding ----------------------------------------------------------------------------

    def start_wave(self, wave: int, cap: int | None = None) -> Step:
        """Start `wave`: the first `cap` tasks run, the rest wait. Allowed for wave 1 of an idle run and for
        the wave after the current one while a confirmation or decision is awaited (that is `advance`)."""
        run = self if cap is None else msgspec.structs.replace(self, cap=max(cap, 0))
        if self.phase == "idle":
            if wave != 1:
                return Step(self, refusal=f"{self.task}: waves start at wave 1, not wave {wave}")
            return _open(run, 1)
        if self.phase in ("awaiting_confirmation", "awaiting_decision") and wave == self.current + 1:
            return run.advance(self.current)
        if wave <= self.current:
            return Step(self, note=f"{self.task}: wave {wave} has already started")
        return Step(self, refusal=self._cannot(f"start wave {wave}"))

    def advance(self, wave: int | None = None) -> Step:
        """Go on from the finished `wave` (default: the current one) to the next, leaving failed tasks as
        they are; after the last wave that means AllWavesDone. advance_wave and "next wave" in the UIs."""
        number = self.current if wave is None else wave
        if number < self.current and self.phase != "idle":
            return Step(self, note=f"{self.task}: wave {number} was already advanced past")
        if self.phase not in ("awaiting_confirmation", "awaiting_decision") or number != self.current:
            return Step(self, refusal=self._cannot(f"advance from wave {number}"))
        return _next(self, self, ())

    def retry_failed(self, wave: int | None = None) -> Step:
        """Run the failed tasks of `wave` (default: the current one) again, within the cap. retry_wave."""
        number = self.current if wave is None else wave
        if self.phase == "running" and number == self.current:
            return Step(self, note=f"{self.task}: wave {number} is already running")
        if self.phase != "awaiting_decision" or number != self.current:
            return Step(self, refusal=self._cannot(f"retry wave {number}"))
        tasks = tuple(
            msgspec.structs.replace(t, status=_PENDING, reason="")
            if t.wave == number and t.status is _FAILED
            else t
            for t in self.tasks
        )
        return _settle(self, msgspec.structs.replace(self, tasks=tasks, phase="running"), ())

    def abort(self, reason: str = "aborted by a person") -> Step:
        """Stop the current wave's agents and end the run; the task waits for a person."""
        if self.phase == "aborted":
            return Step(self, note=f"{self.task}: the waves were already aborted")
        if self.phase in ("idle", "done"):
            return Step(self, refusal=self._cannot("abort"))
        wave = self.current
        live = tuple(t.number for t in self.wave_tasks(wave) if t.status is _RUNNING)
        run = msgspec.structs.replace(self, phase="aborted")
        actions: tuple[WaveAction, ...] = (StopTasks(wave, live, reason),) if live else ()
        return _finish(self, run, (*actions, WavesAborted(wave, reason)))

    # --- task events --------------------------------------------------------------------------------------

    def task_finished(self, wave: int, task_number: int) -> Step:
        """implement_task_finished {wave_number, task_number}: a running task is complete."""
        return self._complete(wave, task_number, "finished", allowed=(_RUNNING,))

    def mark_complete(self, wave: int, task_number: int) -> Step:
        """A person says the task is complete: also a pending or failed one of the current wave (it is then
        not started, or no longer counts as failed: the wave's outcome is decided again)."""
        return self._complete(wave, task_number, "marked complete", allowed=(_PENDING, _RUNNING, _FAILED))

    def task_failed(self, wave: int, task_number: int, reason: str = "its agent failed") -> Step:
        """The task's agent failed (crashed, was killed, exited with an error)."""
        found, refusal = self._find(wave, task_number)
        if found is None:
            return Step(self, refusal=refusal)
        if found.status in _TERMINAL:
            return Step(self, note=f"{self._name(found)} is already {found.status}: its failure is ignored")
        if refusal := self._live(found, "fail"):
            return Step(self, refusal=refusal)
        if found.status is _PENDING:
            return Step(self, refusal=f"{self._name(found)} has not started: it cannot fail")
        return _settle(self, self._set(found, _FAILED, reason), ())

    def agent_exited_cleanly(self, wave: int, task_number: int, worked: bool) -> Step:
        """The task's agent exited without an error: complete if it had worked, else failed."""
        if worked:
            return self._complete(wave, task_number, "exited after working", allowed=(_RUNNING,))
        return self.task_failed(wave, task_number, "its agent exited before doing any work")

    # --- helpers ------------------------------------------------------------------------------------------

    def _complete(self, wave: int, task_number: int, how: str, allowed: tuple[WaveTaskStatus, ...]) -> Step:
        found, refusal = self._find(wave, task_number)
        if found is None:
            return Step(self, refusal=refusal)
        if found.status is _COMPLETE:
            return Step(self, note=f"{self._name(found)} is already complete")
        if refusal := self._live(found, "complete", person=_PENDING in allowed):
            return Step(self, refusal=refusal)
        if found.status not in allowed:
            if found.status is _PENDING:
                return Step(self, refusal=f"{self._name(found)} has not started yet (it is pending)")
            return Step(
                self,
                refusal=f"{self._name(found)} has failed: retry the wave (retry_wave) or mark it complete",
            )
        run = self._set(found, _COMPLETE, "")
        if self.phase == "awaiting_decision":
            run = msgspec.structs.replace(run, phase="running")
        return _settle(self, run, ())

    def _find(self, wave: int, task_number: int) -> tuple[WaveTask | None, str]:
        if not 1 <= wave <= self.waves:
            return None, f"{self.task} has no wave {wave} (its plan has {self.waves})"
        found = self.get(task_number)
        if found is None:
            return None, f"{self.task} has no task {task_number} in its plan"
        if found.wave != wave:
            return None, f"task {task_number} of {self.task} is in wave {found.wave}, not wave {wave}"
        return found, ""

    def _live(self, found: WaveTask, what: str, person: bool = False) -> str:
        """Why `found` cannot `what` now ("" if it can): its wave must be the one running (or, for a
        person's mark complete, the one awaiting a decision)."""
        phases = ("running", "awaiting_decision") if person else ("running",)
        if found.wave == self.current and self.phase in phases:
            return ""
        if self.phase == "idle":
            return f"{self._name(found)} cannot {what}: no wave of {self.task} has started"
        if self.phase == "aborted":
            return f"{self._name(found)} cannot {what}: the waves of {self.task} were aborted"
        if self.phase == "done":
            return f"{self._name(found)} cannot {what}: every wave of {self.task} is over"
        if found.wave != self.current:
            return f"wrong wave: {self._name(found)} cannot {what} while wave {self.current} is current"
        return (
            f"{self._name(found)} cannot {what}: wave {found.wave} is over ({self.phase.replace('_', ' ')})"
        )

    def _set(self, found: WaveTask, status: WaveTaskStatus, reason: str) -> WaveRun:
        tasks = tuple(
            msgspec.structs.replace(t, status=status, reason=reason) if t.number == found.number else t
            for t in self.tasks
        )
        return msgspec.structs.replace(self, tasks=tasks)

    def _name(self, found: WaveTask) -> str:
        return f"task {found.number} of wave {found.wave} of {self.task}"

    def _cannot(self, what: str) -> str:
        state = f"wave {self.current} is {self.phase.replace('_', ' ')}" if self.current else "it is idle"
        return f"{self.task}: cannot {what}: {state}"


_STATUSES = frozenset(s.value for s in WaveTaskStatus)


def _open(run: WaveRun, wave: int) -> Step:
    """Make `wave` current and running, and fill its slots."""
    return _settle(run, msgspec.structs.replace(run, current=wave, phase="running"), ())


def _settle(before: WaveRun, run: WaveRun, actions: tuple[WaveAction, ...]) -> Step:
    """Fill free slots of the running wave; when every task is terminal, report the outcome and go on."""
    if run.phase != "running":
        return _finish(before, run, actions)
    wave = run.current
    tasks = list(run.tasks)
    running = sum(t.wave == wave and t.status is _RUNNING for t in tasks)
    starts: list[WaveAction] = []
    for i, item in enumerate(tasks):
        if run.cap and running >= run.cap:
            break
        if item.wave == wave and item.status is _PENDING:
            tasks[i] = msgspec.structs.replace(item, status=_RUNNING, attempts=item.attempts + 1, reason="")
            starts.append(StartTask(wave, item.number, item.attempts + 1))
            running += 1
    run = msgspec.structs.replace(run, tasks=tuple(tasks))
    actions = (*actions, *starts)
    mine = run.wave_tasks(wave)
    if any(t.status not in _TERMINAL for t in mine):
        return _finish(before, run, actions)
    numbers = tuple(t.number for t in mine)
    actions = (*actions, StopTasks(wave, numbers, f"wave {wave} is over"))
    failed = tuple(t.number for t in mine if t.status is _FAILED)
    if failed:
        complete = len(mine) - len(failed)
        message = (
            f"{run.task} — wave {wave}: {complete}/{len(mine)} tasks complete, {len(failed)} failed "
            f"(task {', '.join(map(str, failed))}). Retry the failed tasks, go on to the next wave, mark a "
            "failed task complete once you fixed it by hand, or cancel the task"
        )
        run = msgspec.structs.replace(run, phase="awaiting_decision")
        question = AwaitDecision(wave, failed, message, decision_commands(run.task, wave, failed))
        return _finish(before, run, (*actions, WaveFailed(wave, failed, complete, len(mine)), question))
    actions = (*actions, WaveDone(wave, len(mine)))
    if wave < run.waves and not run.auto_advance:
        message = f"{run.task} — wave {wave} complete ({len(mine)}/{len(mine)}). Start wave {wave + 1}?"
        commands = (
            f"corral signal emit advance_wave {run.task}",
            f"corral task transition {run.task} cancel",
        )
        run = msgspec.structs.replace(run, phase="awaiting_confirmation")
        return _finish(before, run, (*actions, AwaitConfirmation(wave, wave + 1, message, commands)))
    return _next(before, run, actions)


def _next(before: WaveRun, run: WaveRun, actions: tuple[WaveAction, ...]) -> Step:
    """Start the wave after the current one, or finish the run after the last."""
    if run.current >= run.waves:
        done = msgspec.structs.replace(run, phase="done")
        return _finish(before, done, (*actions, AllWavesDone(run.waves)))
    opened = msgspec.structs.replace(run, current=run.current + 1, phase="running")
    return _settle(before, opened, actions)


def _finish(before: WaveRun, run: WaveRun, actions: tuple[WaveAction, ...]) -> Step:
    old = {t.number: t for t in before.tasks}
    changed = tuple(t for t in run.tasks if old.get(t.number) != t)
    return Step(run, actions, changed=changed)


def wave_progress(rows: Iterable[WaveTaskRecord]) -> WaveProgress | None:
    """A task's current wave from its wave tasks' rows, as `WaveRun.from_records` finds it: the last wave
    with a task that ever started. None when the task has no wave tasks or none has started yet."""
    rows = list(rows)
    started = [r.wave_number for r in rows if r.status != _PENDING.value or r.attempts > 0]
    if not started:
        return None
    current = max(started)
    wave = [r for r in rows if r.wave_number == current]
    return WaveProgress(
        wave=current,
        waves=max(r.wave_number for r in rows),
        done=sum(r.status == _COMPLETE.value for r in wave),
        total=len(wave),
        failed=sum(r.status == _FAILED.value for r in wave),
    )
