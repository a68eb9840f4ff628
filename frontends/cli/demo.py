"""`corral demo`: one task carried through the whole lifecycle by simulated agents, in a scratch repository.

    corral demo --headless          # what `make demo` runs
    corral demo --json              # the summary as one JSON object on stdout (progress on stderr)
    corral demo --keep              # keep the scratch repository to look at afterwards

Everything the demo touches is its own (`frontends.cli.sandbox`): a temporary directory holding a git
repository, a database, a runtime directory and a tmux server of its own, so the user's tasks, database,
daemon and tmux server are never seen. Every agent is corral-sim, playing the role corral starts it in: the
planner writes a plan of 2 waves × 3 tasks, each wave coder commits `Task N: …`, the reviewer and the
readiness agent approve.

The demo does only what a person would: it creates the task, starts planning, and starts implementing once
the plan is written (planned → implementing is a person's `corral task implement`). The rest is the daemon
reacting to the agents' signals. Progress is read from the store every 0.25 s — the audit rows, the wave
tasks, the task's status — rather than from the event stream: the store is the record of what happened, and
an event dropped for a slow reader (`lagged`) would be a line missing for good.

Cleanup always runs, also on Ctrl-C and SIGTERM: the daemon is stopped (killed if it does not stop), the tmux
server is killed, and the directory is removed unless --keep. A second Ctrl-C cannot cut it short.

This module is the run: the loop that drives the task and its summary. What the run shows people —
progress lines, the summary, the failure — is `frontends.cli.demo_report`'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from frontends.cli.demo_report import (
    ENDED,
    NEXT_STEPS,
    Progress,
    Snapshot,
    Summary,
    agent_rows,
    attributed,
    audit_tail,
    failure,
    format_summary,
    waiting_for,
    wave_task_rows,
)
from frontends.cli.output import HelpFormatter, print_error, print_json, terminal_safe
from frontends.cli.sandbox import (
    Sandbox,
    Scratch,
    branch_commits,
    corral_sim,
    private_environment,
    require_tools,
    terminate_as_interrupt,
)

if TYPE_CHECKING:
    from actors.store import Store
    from protocols.records import Project, Task

__all__ = ["BRIEF", "TASK", "register"]

TASK = "demo"
TITLE = "Greet the reader"
BRIEF = f"""\
# {TITLE}

A small change to show corral at work: greet the reader of this project, in parts that can be written in
parallel. corral-sim plans it as 2 waves of 3 tasks:

sim-plan: waves=2 tasks=3
"""

POLL_S = 0.25
DAEMON_START_S = 20.0
SETTLE_S = 5.0  # after done: how long to wait for the agents to be stopped, so the summary shows them ended
AUDIT_TAIL = 15

_DESCRIPTION = (
    "Run the whole lifecycle once, end to end, with simulated agents (corral-sim) under a daemon of the "
    "demo's own. In a scratch git repository a task is planned (2 waves of 3 tasks), each wave is "
    "implemented by 3 agents in parallel, each committing its task, the work is reviewed and verified, "
    "and the task is done. Progress is printed as it goes; a summary ends it: the statuses, the commits "
    "each agent made, the time taken.\n\n"
    "It works from any directory and never touches your tasks, database, daemon or tmux server: the "
    "repository, the database (CORRAL_HOME), the daemon's runtime directory and the tmux server are the "
    "demo's own, and removed at the end (--keep keeps them). Exit 0 when the task is done; 1 when it is "
    "not: on a timeout it says what it was waiting for and shows the last audit rows.\n\n"
    "On a terminal the demo will open the dashboard once corral has one; --headless never opens it. The "
    "demo's agents inherit the CORRAL_SIM_* variables you set (CORRAL_SIM_REVIEW=changes-once adds a "
    "review round)."
)

_EPILOG = """\
examples:
  corral demo
  corral demo --headless --keep
  corral demo --json | jq '.agents[] | {title, commits}'
  CORRAL_SIM_REVIEW=changes-once corral demo --timeout 300"""


def register(groups: Any, summary: str) -> None:
    """Add `demo` to the top-level sub-parsers."""
    parser = groups.add_parser(
        "demo", help=summary, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--headless", action="store_true", help="never open the dashboard: print progress only"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch repository (and the demo's database and logs)"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=180.0,
        metavar="SECONDS",
        help="give up when the task is not done after SECONDS (default 180)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object (progress goes to stderr)"
    )
    parser.set_defaults(handler=_demo)


# --- the run -----------------------------------------------------------------------------------------------


class _Board:
    """Progress lines: `  12.3s  implementing  started demo-W1-T2 (coder, wave 1)`."""

    def __init__(self, stream: TextIO, began: float) -> None:
        self.stream = stream
        self.began = began

    def say(self, status: str, text: str) -> None:
        elapsed = time.monotonic() - self.began
        print(terminal_safe(f"{elapsed:6.1f}s  {status:<12}  {text}"), file=self.stream, flush=True)


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    problem: str
    snapshot: Snapshot


def _demo(args: argparse.Namespace) -> int:
    sim = corral_sim()
    require_tools("the demo")
    sandbox = Sandbox(Scratch.make("corral-demo-"), sim, name="demo")
    demo = _Demo(sandbox, _Board(sys.stderr if args.json else sys.stdout, time.monotonic()), args.timeout)
    try:
        with private_environment(sandbox.scratch.environment()), terminate_as_interrupt():
            summary = demo.run()
    finally:
        problems = demo.clean_up(keep=args.keep)
    summary = dataclasses.replace(summary, kept=args.keep, cleanup_problems=tuple(problems))
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary, _missing_from_path()))
    if not summary.ok:
        print_error(failure(summary))
    return 0 if summary.ok else 1


class _Demo:
    """One run: set up, follow the task to its end, summarize; `clean_up` whatever happened."""

    def __init__(self, sandbox: Sandbox, board: _Board, timeout: float) -> None:
        self.sandbox = sandbox
        self.scratch = sandbox.scratch
        self.client = sandbox.client
        self.board = board
        self.timeout = timeout
        self.deadline = board.began + timeout

    def run(self) -> Summary:
        from actors.store import Store

        self.sandbox.make_repo()
        self.board.say("setup", f"scratch repository {self.scratch.repo}")
        started = self.sandbox.start_daemon(timeout=DAEMON_START_S)
        heart = f", under its heart, pid {started.heart_pid}" if started.heart_pid else ""
        self.board.say(
            "setup",
            f"daemon started (pid {started.pid}{heart}); agents run on tmux server {self.scratch.socket}",
        )
        # Changes go through the daemon's API, as a UI's do: a transition there wakes the project's supervisor
        # at once. Progress is read from the store.
        name = self.client.call("POST", "/v1/repos", json={"path": str(self.scratch.repo)})["name"]
        self.client.call(
            "POST", f"/v1/repos/{name}/tasks", json={"name": TASK, "title": TITLE, "content": BRIEF}
        )
        self.board.say("ready", f"task {TASK} created: {TITLE}")
        self._move(name, "plan_start")
        with Store.open() as store:
            project = store.get_project(name)
            outcome = self._follow(store, project)
            if outcome.ok:
                outcome = self._settled(store, project, outcome)
            return self._summarize(store, project, outcome)

    def _follow(self, store: Store, project: Project) -> _Outcome:
        """Print what happens until the task is done, cannot go on, or the deadline passes."""
        from protocols.fsm import PHASE_PLANNED, Status

        progress = Progress()
        implementing = False
        next_ping = time.monotonic() + 2.0
        while True:
            snap = _snapshot(store, project, progress.last_audit_id)
            task = snap.task
            for status, text in progress.lines(snap):
                self.board.say(status, text)
            if task.status == Status.DONE:
                return _Outcome(True, "", snap)
            if task.status == Status.CANCELLED:
                return _Outcome(False, f"task {TASK} was cancelled", snap)
            if progress.stuck:
                return _Outcome(False, f"task {TASK} cannot go on without a person: {progress.stuck}", snap)
            if task.display_status == PHASE_PLANNED and not implementing:
                problem = _plan_problem(task)
                if problem:
                    return _Outcome(False, problem, snap)
                self.board.say(
                    PHASE_PLANNED,
                    f"the plan is written: implementing it, as `corral task implement {TASK}` does",
                )
                self._move(project.name, "implement_start")
                implementing = True
                continue
            now = time.monotonic()
            if now >= self.deadline:
                return _Outcome(False, f"timed out after {self.timeout:g} s: {waiting_for(snap)}", snap)
            if now >= next_ping:
                next_ping = now + 2.0
                if self.client.ping() is None:
                    return _Outcome(False, self._daemon_gone(), snap)
            time.sleep(min(POLL_S, self.deadline - now))

    def _settled(self, store: Store, project: Project, outcome: _Outcome) -> _Outcome:
        """After done the daemon stops the task's agents: wait (briefly) so the summary shows them ended."""
        snap, deadline = outcome.snapshot, time.monotonic() + SETTLE_S
        while any(a.status not in ENDED for a in snap.agents) and time.monotonic() < deadline:
            time.sleep(POLL_S)
            snap = _snapshot(store, project, snap.audit[-1].id if snap.audit else 0)
        return dataclasses.replace(outcome, snapshot=snap)

    def _move(self, project: str, event: str) -> None:
        """Apply `event` to the demo's task through the daemon, which then carries out what it decides."""
        self.client.call("POST", f"/v1/repos/{project}/tasks/{TASK}/transition", json={"event": event})

    def _daemon_gone(self) -> str:
        from frontends.daemon.spawn import log_tail

        tail = "\n".join(log_tail(self.client.paths.log_file)) or "(empty)"
        return f"the demo's daemon stopped answering; the last lines of its log:\n{tail}"

    def _summarize(self, store: Store, project: Project, outcome: _Outcome) -> Summary:
        snap = outcome.snapshot
        task = snap.task
        commits = attributed(branch_commits(self.scratch.repo, task.branch), snap)
        tail = () if outcome.ok else audit_tail(store.list_audit(project.id, limit=AUDIT_TAIL))
        return Summary(
            ok=outcome.ok,
            status=task.display_status,
            problem=outcome.problem,
            task=task.name,
            branch=task.branch,
            seconds=round(time.monotonic() - self.board.began, 2),
            timeout_s=self.timeout,
            scratch=str(self.scratch.root),
            repo=str(self.scratch.repo),
            kept=False,
            daemon_pid=self.sandbox.daemon_pid,
            heart_pid=self.sandbox.heart_pid,
            next_steps=tuple(command for command, _ in NEXT_STEPS) if outcome.ok else (),
            tmux_socket=self.scratch.socket,
            agents=agent_rows(snap, commits),
            wave_tasks=wave_task_rows(snap),
            commits=commits,
            audit_tail=tail,
        )

    # -- cleanup ---------------------------------------------------------------------------------------------

    def clean_up(self, *, keep: bool) -> list[str]:
        """Stop the daemon and the tmux server, remove the directory unless `keep` (Sandbox.clean_up). Never
        raises; returns the problems met, for the summary."""
        root = self.scratch.root
        try:
            verb = "keeping" if keep else "removing"
            self.board.say("cleanup", f"stopping the daemon and the tmux server; {verb} {root}")
        except OSError:  # the reader went away (`corral demo | head`): clean up all the same
            pass
        return self.sandbox.clean_up(keep=keep)


def _missing_from_path() -> str:
    """The directory of this corral when typing `corral` would not run it (after `make demo` it lives in the
    checkout's .venv/bin), else ""."""
    here = Path(sys.argv[0]).absolute().parent if sys.argv and sys.argv[0] else Path(sys.executable).parent
    found = shutil.which("corral")
    return "" if found is not None and Path(found).absolute().parent == here else str(here)


def _snapshot(store: Store, project: Project, after_audit: int) -> Snapshot:
    task = store.get_task(project.id, TASK)
    rows = [row for row in store.list_audit(project.id, limit=500) if row.id > after_audit]
    agents = sorted(store.list_instances(project.name), key=lambda a: (a.created_at, a.title))
    return Snapshot(task, tuple(reversed(rows)), tuple(store.list_wave_tasks(task.id)), tuple(agents))


def _plan_problem(task: Task) -> str:
    """Why the planner's plan cannot be implemented, or ""."""
    from protocols.errors import PlanError
    from protocols.stages import read_plan

    try:
        read_plan(task.content, task.name)
    except PlanError as exc:
        return f"the planner's plan cannot be read: {exc}"
    return ""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value
