"""`corral demo`: one task carried through the whole lifecycle by simulated agents, in a scratch repository.

    corral demo --headless          # what `make demo` runs
    corral demo --json              # the summary as one JSON object on stdout (progress on stderr)
    corral demo --keep              # keep the scratch repository to look at afterwards

Everything the demo touches is its own: a temporary directory holding a git repository (`repo/`), a database
(`home/`, as CORRAL_HOME), a runtime directory (`run/`: the daemon's socket, pid lock and log) and a tmux
server on a socket of its own (CORRAL_TMUX_SOCKET). They are set in this process's environment before its
daemon is started, so that the daemon and every agent it starts inherit them: the user's tasks, database,
daemon and tmux server are never seen. CORRAL_SIM_AUTO_APPROVE goes the same way, because `[resources.env]`
may not set CORRAL_* variables. Every agent is corral-sim, playing the role corral starts it in: the planner
writes a plan of 2 waves × 3 tasks, each wave coder commits `Task N: …`, the reviewer and the readiness agent
approve.

The demo does only what a person would: it creates the task, starts planning, and starts implementing once
the plan is written (planned → implementing is a person's `corral task implement`). The rest is the daemon
reacting to the agents' signals. Progress is read from the store every 0.25 s — the audit rows, the wave
tasks, the task's status — rather than from the event stream: the store is the record of what happened, and
an event dropped for a slow reader (`lagged`) would be a line missing for good.

Cleanup always runs, also on Ctrl-C and SIGTERM: the daemon is stopped (killed if it does not stop), the tmux
server is killed, and the directory is removed unless --keep. A second Ctrl-C cannot cut it short.

This module is the run: the scratch environment, the daemon, the loop that drives the task, the cleanup. What
the run shows people — progress lines, the summary, the failure — is `frontends.cli.demo_report`'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
from protocols.errors import CorralError

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


# --- the scratch directory and its environment -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scratch:
    """The demo's temporary directory and the names derived from it."""

    root: Path
    socket: str

    @classmethod
    def make(cls) -> Scratch:
        root = Path(tempfile.mkdtemp(prefix="corral-demo-")).resolve()
        scratch = cls(root, f"corral-demo-{os.getpid()}-{secrets.token_hex(2)}")
        scratch.home.mkdir(mode=0o700)
        scratch.runtime.mkdir(mode=0o700)
        os.chmod(scratch.runtime, 0o700)  # mkdir's mode is filtered by the umask; the daemon requires 0700
        return scratch

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def runtime(self) -> Path:
        return self.root / "run"

    def environment(self) -> dict[str, str | None]:
        """The variables the demo sets (None: removed) for itself, its daemon and the daemon's agents."""
        from protocols.config import MANAGED_ENV_KEYS

        # An agent's own variables (corral demo run inside an agent's session) and a git override would
        # point the demo at someone else's task or repository.
        cleared = [*MANAGED_ENV_KEYS, "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE"]
        return {
            **dict.fromkeys(cleared),
            "CORRAL_HOME": str(self.home),
            "CORRAL_RUNTIME_DIR": str(self.runtime),
            "CORRAL_TMUX_SOCKET": self.socket,
            "CORRAL_SIM_AUTO_APPROVE": "1",
        }


@contextmanager
def _environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with `changes` applied, restored on exit."""
    before = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so that a terminated demo cleans up as an interrupted one does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored while the body runs: a cleanup cut short leaves a daemon behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _corral_sim() -> str:
    """The simulated agent's absolute path: beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("corral-sim")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("corral-sim")
    if found is None:
        raise CorralError(
            f"the demo's agents are corral-sim, which is neither beside {sys.executable} nor on PATH: "
            "install corral with its scripts (pip install -e . in its source tree, or make demo)"
        )
    return str(Path(found).absolute())


def _require_tools() -> None:
    missing = [tool for tool in ("git", "tmux") if shutil.which(tool) is None]
    if missing:
        raise CorralError(
            f"the demo needs {' and '.join(missing)}, not found on PATH: corral doctor says how to install it"
        )


def _make_repo(repo: Path, sim: str) -> None:
    """A git repository with a README and a `.corral/config.toml` that runs every agent as corral-sim."""
    import json

    from actors.git.runner import run_git
    from frontends.cli.setup import EXCLUDED

    repo.mkdir()
    run_git(repo, "init", "-q")
    run_git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    for key, value in (
        ("user.name", "corral demo"),
        ("user.email", "demo@corral.invalid"),
        ("commit.gpgsign", "false"),
    ):
        run_git(repo, "config", key, value)
    (repo / "README.md").write_text("# A scratch project\n\nMade by `corral demo`, removed when it ends.\n")
    config = repo / ".corral" / "config.toml"
    config.parent.mkdir()
    # A JSON string is a TOML basic string for any path.
    config.write_text(f"default_program = {json.dumps(sim)}\nauto_yes = true\n")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("".join(f"{line}\n" for line in EXCLUDED))
    run_git(repo, "add", "README.md", ".corral/config.toml")
    run_git(repo, "commit", "-q", "-m", "Initial commit")


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
    sim = _corral_sim()
    _require_tools()
    demo = _Demo(
        Scratch.make(), _Board(sys.stderr if args.json else sys.stdout, time.monotonic()), args.timeout
    )
    try:
        with _environment(demo.scratch.environment()), _terminate_as_interrupt():
            summary = demo.run(sim)
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

    def __init__(self, scratch: Scratch, board: _Board, timeout: float) -> None:
        from frontends.daemon import DaemonClient

        self.scratch = scratch
        self.board = board
        self.timeout = timeout
        self.deadline = board.began + timeout
        self.client = DaemonClient(scratch.runtime)
        self.daemon_pid: int | None = None
        self.heart_pid: int | None = None

    def run(self, sim: str) -> Summary:
        from actors.store import Store

        _make_repo(self.scratch.repo, sim)
        self.board.say("setup", f"scratch repository {self.scratch.repo}")
        started = self.client.autostart(start_timeout=DAEMON_START_S)
        self.daemon_pid, self.heart_pid = started.pid, started.heart_pid
        heart = f", under its heart, pid {self.heart_pid}" if self.heart_pid else ""
        self.board.say(
            "setup",
            f"daemon started (pid {self.daemon_pid}{heart}); agents run on tmux server {self.scratch.socket}",
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
        commits = attributed(_branch_commits(self.scratch.repo, task.branch), snap)
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
            daemon_pid=self.daemon_pid,
            heart_pid=self.heart_pid,
            next_steps=tuple(command for command, _ in NEXT_STEPS) if outcome.ok else (),
            tmux_socket=self.scratch.socket,
            agents=agent_rows(snap, commits),
            wave_tasks=wave_task_rows(snap),
            commits=commits,
            audit_tail=tail,
        )

    # -- cleanup ---------------------------------------------------------------------------------------------

    def clean_up(self, *, keep: bool) -> list[str]:
        """Stop the daemon, kill the tmux server, remove the directory unless `keep`. Never raises, and
        cannot be interrupted; returns the problems met, for the summary."""
        problems: list[str] = []
        root = self.scratch.root
        with _shielded():
            try:
                self.board.say(
                    "cleanup",
                    f"stopping the daemon and the tmux server; {'keeping' if keep else 'removing'} {root}",
                )
            except OSError:  # the reader went away (`corral demo | head`): clean up all the same
                pass
            self._stop_daemon(problems)
            _kill_tmux(self.scratch.socket, problems)
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
                if root.exists():
                    problems.append(f"could not remove {root}: remove it with rm -rf {root}")
        return problems

    def _stop_daemon(self, problems: list[str]) -> None:
        """Stop the daemon and its heart in order; kill what is left. Both are frozen (SIGSTOP) before either
        is killed: a heart would restart a killed daemon, and a daemon would replace a killed heart."""
        from frontends.daemon import DaemonError
        from frontends.daemon.lock import lock_holder, pid_alive

        paths = self.client.paths
        holders = (lock_holder(paths.pid_file), lock_holder(paths.heart_pid_file))
        pids = {self.daemon_pid, self.heart_pid, *holders}
        try:
            self.client.stop(timeout=30)
        except (DaemonError, OSError) as exc:
            problems.append(f"the demo's daemon did not stop in order, so it was killed: {exc}")
        left = [pid for pid in pids if pid is not None and pid_alive(pid)]
        for signum in (signal.SIGSTOP, signal.SIGKILL):
            for pid in left:
                try:
                    os.kill(pid, signum)
                except OSError:
                    pass


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


def _kill_tmux(socket: str, problems: list[str]) -> None:
    from actors.runtimes.tmux_server import TmuxServer

    server = TmuxServer(socket)
    try:
        server.kill()
    except (CorralError, OSError) as exc:
        problems.append(f"could not kill the demo's tmux server ({exc}): tmux -L {socket} kill-server")
    shutil.rmtree(server.run_dir, ignore_errors=True)  # the agents' output FIFOs


def _branch_commits(repo: Path, branch: str) -> list[tuple[str, int, str]]:
    """(short sha, commit time, subject) of the commits on `branch` that main does not have, oldest first."""
    from actors.git.runner import git_succeeds, run_git

    if not branch or not git_succeeds(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"):
        return []
    out = run_git(repo, "log", "--reverse", "--format=%h%x09%ct%x09%s", f"main..refs/heads/{branch}")
    fields = (line.split("\t", 2) for line in out.splitlines())
    return [(sha, int(when), subject) for sha, when, subject in fields]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value
