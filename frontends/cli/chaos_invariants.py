"""The invariants a chaos campaign checks, as pure functions of what it read: signals, audit rows, wave tasks,
samples of the process table, snapshots of each task. No store, no /proc, no clock: a test feeds them records
made by hand (a doubled transition, a signal left pending) and sees them fail.

    violations = check_signals(signals, audit, emitted)       # lost signals, doubled applications
    violations += check_task(task, audit_of_task, wave_rows)   # doubled transitions, duplicate agent starts
    duplicates = DuplicateWatch(); duplicates.sample(procs)    # two live agents with one title
    stalls = StallWatch(stall_s=15); stalls.observe(...)       # a task not moving, with no reason shown

Each finding is a `Violation` naming its invariant (one of INVARIANTS) and what was seen, in words a person
can check against `corral audit` and `corral signal list`. docs/chaos.md says how each invariant is checked
and why that check is enough.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from frontends.cli.chaos_procs import Proc, describe
from protocols.records import AuditEvent, Signal, Task, WaveTaskRecord

__all__ = [
    "APPLY_KINDS",
    "DOUBLED",
    "DUPLICATE",
    "INVARIANTS",
    "LEAKED",
    "LOST",
    "STUCK",
    "DuplicateWatch",
    "StallWatch",
    "Violation",
    "check_leaks",
    "check_signals",
    "check_task",
]

LOST = "lost signals"
DOUBLED = "doubled transitions"
DUPLICATE = "duplicate agents"
LEAKED = "leaked processes"
STUCK = "tasks stuck"
INVARIANTS: tuple[str, ...] = (LOST, DOUBLED, DUPLICATE, LEAKED, STUCK)

APPLY_KINDS = frozenset(
    {"transition", "wave_task_finished", "start_wave", "retry_wave", "advance_wave", "signal_failed"}
)
"""The audit kinds the store writes in the transaction that applies a signal: exactly one per settled signal
(docs/store.md). Other rows may carry a signal id too (`signal_requeued`, `wave_refused`): not counted."""

_TRANSITION = re.compile(r": (\w+) → (\w+) \((\w+), by (\w+)\)$")
_WAVE_TITLE = re.compile(r"-W(\d+)-T(\d+)$")
_STEP_OF_TITLE: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"-plan$"), ("planning",)),
    (re.compile(r"-coder$"), ("implementing",)),
    (re.compile(r"-fix-\d+$"), ("implementing",)),
    (re.compile(r"-review-\d+$"), ("reviewing",)),
    (re.compile(r"-verify-\d+$"), ("verifying",)),
)


class Violation(msgspec.Struct, frozen=True):
    invariant: str  # one of INVARIANTS
    what: str


# --- signals -----------------------------------------------------------------------------------------------


def check_signals(
    signals: Iterable[Signal], audit: Iterable[AuditEvent], emitted: Mapping[int, str] | None = None
) -> list[Violation]:
    """At the end of a campaign: every signal is settled — done, or failed with a reason — and recorded by
    exactly one applying audit row; every signal the campaign itself emitted (`emitted`: id → what it was) is
    among them. A signal still pending or processing, failed without a reason, never recorded, or missing is
    lost; one recorded twice was applied twice."""
    rows: Counter[int] = Counter(
        row.signal_id for row in audit if row.signal_id is not None and row.kind in APPLY_KINDS
    )
    found: set[int] = set()
    out = []
    for signal in signals:
        found.add(signal.id)
        name = f"signal {signal.id} ({signal.signal_type} for {signal.task}, from {signal.source})"
        if signal.status not in ("done", "failed"):
            out.append(Violation(LOST, f"{name} is still {signal.status}"))
            continue
        if signal.status == "failed" and not signal.result.strip():
            out.append(Violation(LOST, f"{name} failed without a reason"))
        count = rows.get(signal.id, 0)
        if count == 0:
            out.append(
                Violation(LOST, f"{name} is {signal.status}, but no audit row records it being applied")
            )
        elif count > 1:
            out.append(Violation(DOUBLED, f"{name} was applied {count} times (audit rows with its id)"))
    for signal_id, what in sorted((emitted or {}).items()):
        if signal_id not in found:
            out.append(Violation(LOST, f"signal {signal_id} ({what}) was emitted, and is not in the store"))
    return out


# --- one task's record -------------------------------------------------------------------------------------


def check_task(task: Task, audit: Sequence[AuditEvent], waves: Sequence[WaveTaskRecord]) -> list[Violation]:
    """One task's audit rows (oldest first) and wave tasks, once it is over:

    - its transitions form one chain: each starts where the one before ended (a transition applied twice,
      by a signal or by corral's own move, starts from a status the task had already left);
    - no wave task completed (by its agent's signal) more often than it was attempted;
    - no agent was started more often than its step asked for one: a wave task's agent at most once per
      attempt, a step's agent at most once per entry into that step.
    """
    out = _chain(task, audit)
    finishes: Counter[tuple[int, int]] = Counter()
    starts: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    for row in audit:
        if row.kind == "wave_task_finished" and row.message.endswith(" complete") and row.detail:
            try:
                payload = msgspec.json.decode(row.detail)
                finishes[(int(payload["wave_number"]), int(payload["task_number"]))] += 1
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                pass
        elif row.kind == "task_agent_started" and row.instance:
            starts[row.instance] += 1
        elif row.kind == "transition":
            found = _TRANSITION.search(row.message)
            if found:
                entries[found.group(2)] += 1
    attempts = {(w.wave_number, w.task_number): w.attempts for w in waves}
    for (wave, number), count in sorted(finishes.items()):
        allowed = attempts.get((wave, number), 0)
        if count > allowed:
            out.append(
                Violation(
                    DOUBLED,
                    f"{task.name}: wave {wave} task {number} completed {count} times in {allowed} attempt(s)",
                )
            )
    for title, count in sorted(starts.items()):
        wave_title = _WAVE_TITLE.search(title)
        if wave_title:
            key = (int(wave_title.group(1)), int(wave_title.group(2)))
            allowed = attempts.get(key, 0)
            unit = f"attempt(s) of wave {key[0]} task {key[1]}"
        else:
            steps = next((s for pattern, s in _STEP_OF_TITLE if pattern.search(title)), ())
            allowed = sum(entries.get(step, 0) for step in steps) if steps else count
            unit = f"entr{'y' if allowed == 1 else 'ies'} into {'/'.join(steps)}"
        if count > allowed:
            out.append(
                Violation(DUPLICATE, f"{task.name}: {title} was started {count} times for {allowed} {unit}")
            )
    return out


def _chain(task: Task, audit: Sequence[AuditEvent]) -> list[Violation]:
    out = []
    status = "ready"
    for row in audit:
        if row.kind == "status_forced":
            status = ""  # set by hand: the chain starts again at the next transition
            continue
        if row.kind != "transition":
            continue
        found = _TRANSITION.search(row.message)
        if found is None:
            continue
        before, after, event, source = found.groups()
        if status and before != status:
            out.append(
                Violation(
                    DOUBLED,
                    f"{task.name}: audit row {row.id} moves it {before} → {after} ({event}, by {source}), "
                    f"but it was {status} then: a transition applied twice, or one not recorded",
                )
            )
        status = after
    return out


# --- processes ---------------------------------------------------------------------------------------------


class DuplicateWatch:
    """Never two live agents with one title. A pair is reported when two consecutive samples of the process
    table show the same two (or more) processes with one title: a process being killed can linger for a
    moment, a duplicate agent lives on. Each pair once."""

    def __init__(self) -> None:
        self._last: dict[str, frozenset[int]] = {}
        self._reported: set[frozenset[int]] = set()
        self.violations: list[Violation] = []

    def sample(self, procs: Iterable[Proc]) -> list[Violation]:
        by_title: defaultdict[str, list[Proc]] = defaultdict(list)
        for proc in procs:
            if proc.kind == "agent":
                by_title[proc.title].append(proc)
        now = {title: frozenset(p.pid for p in group) for title, group in by_title.items() if len(group) > 1}
        new = []
        for title, pids in now.items():
            if self._last.get(title) == pids and pids not in self._reported:
                self._reported.add(pids)
                shown = ", ".join(describe(p) for p in by_title[title])
                new.append(Violation(DUPLICATE, f"two live agents titled {title}: {shown}"))
        self._last = now
        self.violations += new
        return new


def check_leaks(procs: Iterable[Proc], when: str) -> list[Violation]:
    """Each process still alive `when` it should not be is a leak."""
    return [Violation(LEAKED, f"{describe(p)} still alive {when}") for p in procs]


# --- stalls ------------------------------------------------------------------------------------------------


class StallWatch:
    """A task that is not progressing shows why. Fed, on every look, each task's progress fingerprint (its
    status and wave tasks: what only moves when the task moves), whether it shows a waiting reason, and
    whether the daemon answers: the clock runs only while it does (nobody can show anything while it is down).
    A task whose fingerprint has not changed for `stall_s` seconds of daemon time, with no waiting reason
    shown, is stuck: one violation per stall, however long it lasts.

        watch.observe(now=12.5, task="chaos-3", fingerprint=(...), waiting="", daemon_up=True)
    """

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.violations: list[Violation] = []
        self._tasks: dict[str, _Stall] = {}
        self._last_now: float | None = None

    def observe(
        self, now: float, task: str, fingerprint: object, waiting: str, daemon_up: bool, note: str = ""
    ) -> Violation | None:
        """Look at `task` at monotonic time `now`; returns the violation when this look finds it stuck.
        `note` says what the task looks like now, for the report (its status, its agents)."""
        state = self._tasks.get(task)
        if state is None or state.fingerprint != fingerprint:
            self._tasks[task] = _Stall(fingerprint, now)
            return None
        if not daemon_up:
            state.paused_since = state.paused_since if state.paused_since is not None else now
            return None
        if state.paused_since is not None:  # the daemon is back: the time it was down does not count
            state.since += now - state.paused_since
            state.paused_since = None
        if waiting:
            state.since = now  # a reason is shown: the clock starts again when it goes
            return None
        if now - state.since < self.stall_s or state.reported:
            return None
        state.reported = True
        violation = Violation(
            STUCK, f"{task} did not move for {now - state.since:.0f} s and showed no waiting reason: {note}"
        )
        self.violations.append(violation)
        return violation

    def forget(self, task: str) -> None:
        self._tasks.pop(task, None)


class _Stall:
    __slots__ = ("fingerprint", "paused_since", "reported", "since")

    def __init__(self, fingerprint: object, since: float) -> None:
        self.fingerprint = fingerprint
        self.since = since
        self.paused_since: float | None = None
        self.reported = False
