"""What `corral demo` shows people: its progress lines, its summary (as a table or as `--json`), and why it
failed when it did.

Apart from the run in `frontends.cli.demo` so that everything here is a pure function of what the run read —
audit rows, wave tasks, agents, the commits on the task's branch: no store, no daemon, no git, no clock. Each
line and table can be pinned by a test with records made by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frontends.cli.output import format_table, short_stamp

if TYPE_CHECKING:
    from protocols.records import AuditEvent, InstanceRecord, Task, WaveTaskRecord

__all__ = [
    "ENDED",
    "NEXT_STEPS",
    "AgentRow",
    "CommitRow",
    "Progress",
    "Snapshot",
    "Summary",
    "WaveTaskRow",
    "agent_rows",
    "attributed",
    "audit_tail",
    "failure",
    "format_summary",
    "waiting_for",
    "wave_task_rows",
]

ENDED = frozenset({"exited", "failed"})
"""Agent statuses that are over: such an agent is not waited for."""

NEXT_STEPS: tuple[tuple[str, str], ...] = (
    ("corral setup", "pick the agent program on your PATH (claude, codex…): writes .corral/config.toml"),
    ('corral task create fix-typos --content "Fix the typos in README.md"', "a task, in your own words"),
    ("corral task implement fix-typos", "an agent does it on branch corral/fix-typos (corral instance list)"),
)
"""What a person tries next on their own repository, each with what it does: real commands (a test runs
them)."""

_SHOWN_KINDS = frozenset(
    {
        "transition",
        "waves_started",
        "wave_started",
        "wave_done",
        "wave_failed",
        "waves_done",
        "waves_aborted",
        "wave_refused",
        "task_waiting",
        "task_agent_failed",
        "outbox_failed",
        "signal_failed",
    }
)
"""Audit kinds shown as progress, besides task_agent_started and every warning or error."""

_STUCK_KINDS = frozenset({"task_waiting", "outbox_failed", "waves_aborted"})
"""Audit kinds after which nothing moves without a person: the demo stops at once, saying why."""

_LEVEL_PREFIX: Mapping[str, str] = {"warn": "warning: ", "error": "error: "}
_WAVE_TASK_COMMIT = re.compile(r"^Task (\d+):")
_TRANSITION = re.compile(r"→ (\w+) \((\w+),")


# --- what the demo reports ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent the task started: its final state and the commits on the task's branch that are its own."""

    title: str
    role: str
    status: str
    reason: str
    wave: int | None
    commits: tuple[str, ...]  # "<sha> <subject>"


@dataclass(frozen=True, slots=True)
class WaveTaskRow:
    wave: int
    task: int
    title: str  # the plan's title of the task
    status: str
    attempts: int
    agent: str


@dataclass(frozen=True, slots=True)
class CommitRow:
    sha: str
    subject: str
    agent: str  # "" when no agent can be told (see `attributed`)


@dataclass(frozen=True, slots=True)
class Summary:
    """What `--json` prints. `ok` is true when the task reached done; `problem` says why not."""

    ok: bool
    status: str
    problem: str
    task: str
    branch: str
    seconds: float
    timeout_s: float
    scratch: str
    repo: str
    kept: bool
    daemon_pid: int | None
    tmux_socket: str
    agents: tuple[AgentRow, ...]
    wave_tasks: tuple[WaveTaskRow, ...]
    commits: tuple[CommitRow, ...]
    audit_tail: tuple[str, ...]  # the last audit rows, oldest first, when the task is not done
    cleanup_problems: tuple[str, ...] = ()
    heart_pid: int | None = None
    next_steps: tuple[str, ...] = ()  # the commands to try next (NEXT_STEPS), when the task is done


# --- progress: a pure decision over snapshots of the store -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store says now: the task, its audit rows newer than the last look (oldest first), its wave
    tasks and the project's agents."""

    task: Task
    audit: Sequence[AuditEvent]
    waves: Sequence[WaveTaskRecord]
    agents: Sequence[InstanceRecord]


class Progress:
    """Turns snapshots into lines for people, each thing once, in the order things happened. No store, no
    clock: `lines` only compares.

        progress = Progress()
        for status, text in progress.lines(snapshot): print(status, text)
        progress.stuck      # "" or the message of a row after which only a person can move the task

    Each line comes with the task's status right after the thing it tells, followed through the transition
    rows, so that a poll that sees several steps at once still labels each with its own status.
    """

    def __init__(self, status: str = "ready") -> None:
        self.status = status
        self.last_audit_id = 0
        self.stuck = ""
        self._waves: dict[int, tuple[str, int]] = {}

    def lines(self, snap: Snapshot) -> list[tuple[str, str]]:
        roles = {a.title: a.agent_type for a in snap.agents}
        events: list[tuple[str, int, str, AuditEvent | None]] = []  # (stamp, order, text, audit row)
        for row in snap.audit:
            if row.id > self.last_audit_id:
                self.last_audit_id = row.id
                events.append((row.ts, 0, _audit_line(row, roles, snap.task.name), row))
        for wave_task in snap.waves:
            state = (wave_task.status, wave_task.attempts)
            if self._waves.get(wave_task.task_number, ("pending", 0)) != state:
                self._waves[wave_task.task_number] = state
                events.append((wave_task.updated_at, 1, _wave_task_line(wave_task), None))
        out: list[tuple[str, str]] = []
        for _stamp, _order, text, row in sorted(events, key=lambda e: e[:2]):
            if row is not None and row.kind == "transition":
                self.status = _status_after(row.message) or self.status
            if row is not None and row.kind in _STUCK_KINDS and not self.stuck:
                self.stuck = _unprefixed(row.message, snap.task.name)
            if text:
                out.append((self.status, text))
        return out


def _status_after(message: str) -> str:
    """The display status a transition row leads to (the store writes `planning → planned (planner_finished,
    by agent)`, each side as `task list` shows it); "" if the message does not read so."""
    found = _TRANSITION.search(message)
    return found.group(1) if found is not None else ""


def _audit_line(row: AuditEvent, roles: Mapping[str, str], task: str) -> str:
    if row.kind == "task_agent_started":
        title = row.instance or _word(row.message, 2)
        said = _word(row.message.partition("(")[2], 0).rstrip(",")  # "(planner, prog)"; "(wave 1, …)"
        role = roles.get(title) or ("coder" if row.wave else said) or "agent"
        where = f", wave {row.wave}" if row.wave else ""
        return f"started {title} ({role}{where})"
    if row.kind in _SHOWN_KINDS or row.level in _LEVEL_PREFIX:
        return _LEVEL_PREFIX.get(row.level, "") + _unprefixed(row.message, task)
    return ""


def _wave_task_line(row: WaveTaskRecord) -> str:
    """A wave task that completed or failed; a first attempt's start is told by its agent's start."""
    which = f"task {row.task_number} of wave {row.wave_number}"
    if row.status == "running":
        return f"{which} running again ({row.title}, attempt {row.attempts})" if row.attempts > 1 else ""
    return f"{which} {row.status}"


def _unprefixed(message: str, task: str) -> str:
    return message.removeprefix(f"{task}: ")


def _word(text: str, index: int) -> str:
    words = text.split()
    return words[index] if len(words) > index else ""


def waiting_for(snap: Snapshot) -> str:
    """What the task is waiting for, for a person: its status, the wave tasks not done, the live agents."""
    parts = [f"task {snap.task.name} is {snap.task.display_status}"]
    open_tasks = [w for w in snap.waves if w.status != "complete"]
    if open_tasks:
        shown = ", ".join(f"task {w.task_number} {w.status}" for w in open_tasks)
        parts.append(f"wave tasks not complete: {shown}")
    live = [a for a in snap.agents if a.status not in ENDED]
    if live:
        shown = ", ".join(f"{a.title} {a.status}" + (f" ({a.reason})" if a.reason else "") for a in live)
        parts.append(f"agents: {shown}")
    else:
        parts.append("no agent is running")
    return "; ".join(parts)


# --- the summary -------------------------------------------------------------------------------------------


def attributed(commits: Sequence[tuple[str, int, str]], snap: Snapshot) -> tuple[CommitRow, ...]:
    """Each commit with the agent that made it. A wave task's commit says its task (`Task N: …`); any other
    is the last coder or fixer outside the waves started before it: those run one at a time."""
    by_task = {w.task_number: w.title for w in snap.waves}
    committers = [
        (_epoch(a.created_at), a.title)
        for a in snap.agents
        if a.agent_type in ("coder", "fixer") and a.wave is None
    ]
    rows = []
    for sha, when, subject in commits:
        found = _WAVE_TASK_COMMIT.match(subject)
        if found:
            agent = by_task.get(int(found.group(1)), "")
        else:
            agent = next((title for start, title in reversed(committers) if start <= when), "")
        rows.append(CommitRow(sha, subject, agent))
    return tuple(rows)


def _epoch(stamp: str) -> int:
    """A store stamp (`2026-11-21T15:01:59.123456Z`) in whole seconds since the epoch, as git dates."""
    from datetime import datetime

    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()) if stamp else 0


def agent_rows(snap: Snapshot, commits: Sequence[CommitRow]) -> tuple[AgentRow, ...]:
    """Each of the task's agents, with the commits `attributed` to it."""
    return tuple(
        AgentRow(
            title=a.title,
            role=a.agent_type,
            status=a.status,
            reason=a.reason,
            wave=a.wave,
            commits=tuple(f"{c.sha} {c.subject}" for c in commits if c.agent == a.title),
        )
        for a in snap.agents
    )


def wave_task_rows(snap: Snapshot) -> tuple[WaveTaskRow, ...]:
    """Each wave task, titled as the plan in the task's content titles it."""
    plan_titles = _plan_titles(snap.task)
    return tuple(
        WaveTaskRow(
            wave=w.wave_number,
            task=w.task_number,
            title=plan_titles.get(w.task_number, ""),
            status=w.status,
            attempts=w.attempts,
            agent=w.title,
        )
        for w in snap.waves
    )


def _plan_titles(task: Task) -> dict[int, str]:
    from protocols.errors import PlanError
    from protocols.stages import read_plan

    try:
        plan = read_plan(task.content, task.name)
    except PlanError:
        return {}
    return {t.number: t.title for t in plan.tasks} if plan is not None else {}


def audit_tail(newest_first: Sequence[AuditEvent]) -> tuple[str, ...]:
    """The last audit rows, one line each (stamp, level, kind, message), oldest first."""
    rows = list(reversed(newest_first))
    width = max((len(r.kind) for r in rows), default=0)
    return tuple(f"{short_stamp(r.ts)}  {r.level:<5}  {r.kind:<{width}}  {r.message}" for r in rows)


def format_summary(s: Summary, bin_dir: str = "") -> str:
    """The summary for a terminal: the verdict, the agents, the wave tasks, the commits, what was kept."""
    verdict = "done" if s.ok else f"not done (task {s.task} is {s.status})"
    lines = ["", f"corral demo: {verdict} in {s.seconds:.1f} s; task {s.task}, branch {s.branch}", ""]
    if s.agents:
        rows = [(a.title, a.role or "-", a.status or "-", str(len(a.commits))) for a in s.agents]
        lines += [format_table(("AGENT", "ROLE", "STATUS", "COMMITS"), rows), ""]
    if s.wave_tasks:
        rows = [
            (str(w.wave), str(w.task), w.title or "-", w.status, str(w.attempts), w.agent)
            for w in s.wave_tasks
        ]
        lines += [format_table(("WAVE", "TASK", "TITLE", "STATUS", "ATTEMPTS", "AGENT"), rows), ""]
    lines.append(f"commits on {s.branch}: {len(s.commits)}")
    lines += [f"  {c.sha}  {c.subject}" + (f"  ({c.agent})" if c.agent else "") for c in s.commits]
    lines.append("")
    if s.kept:
        lines += [
            f"kept {s.scratch}:",
            f"  the repository:  git -C {s.repo} log --oneline --all",
            f"  the task:        cd {s.repo} && CORRAL_HOME={s.scratch}/home corral task show {s.task}",
            f"  remove it:       rm -rf {s.scratch}",
        ]
    else:
        lines.append(f"removed {s.scratch}")
    lines += [f"warning: {problem}" for problem in s.cleanup_problems]
    if s.ok:
        lines += ["", *next_steps(bin_dir)]
    return "\n".join(lines)


def next_steps(bin_dir: str = "") -> list[str]:
    """The demo's last lines: NEXT_STEPS as lines a person can paste into a shell (what each does as a comment
    above it); first, when corral is not on their PATH, the line that puts `bin_dir` there."""
    lines = ["next, on your own repository (run these in its directory):"]
    if bin_dir:
        lines += ["  # corral is not on your PATH yet", f'  export PATH="{bin_dir}:$PATH"']
    for command, what in NEXT_STEPS:
        lines += [f"  # {what}", f"  {command}"]
    return lines


def failure(s: Summary) -> str:
    """The error a demo that did not finish ends with: why, and the audit rows that led there."""
    message = f"the demo did not finish: {s.problem}"
    if s.audit_tail:
        message += f"\nthe last {len(s.audit_tail)} audit rows:\n" + "\n".join(f"  {r}" for r in s.audit_tail)
    return message
