"""Injecting each kind of fault into a running campaign, and telling when the system moves again.

    injector = Injector(world)
    active = injector.inject(fault, look)      # None: no target for it right now (try again at the next look)
    seconds = injector.poll(active, look)      # None until it recovered; then the recovery time

One `Look` is what the campaign saw at one moment: the current task and its wave tasks, the campaign's
processes, the daemon's pid (None while it does not answer). An `Active` fault remembers what it did, from
when its recovery is measured, and the task's progress fingerprint at that moment.

**Moving again** (docs/chaos.md has the table): for a fault that stops work — an agent, the tmux server or the
daemon killed, an actor crashed, an agent stopped, a flood, a full disk — the system moves again when its own
part is back (the daemon answers with a new pid; the crashed actor runs as a new generation; the daemon writes
again) *and* the task has progressed since the fault (its status or a wave task changed), or is done. A
held fault (a stopped agent, a full disk) is measured from its release (SIGCONT, space freed): the hold's
length is chosen by the schedule, not by corral. A malformed or duplicate signal stops nothing: it has
recovered once the signal is settled — refused by `corral signal emit`, or failed with a reason — and that
is its time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontends.cli.chaos_disk import ChaosDisk
from frontends.cli.chaos_invariants import DOUBLED, Violation
from frontends.cli.chaos_procs import Proc, describe
from frontends.cli.chaos_schedule import BAD_SIGNALS, Fault

if TYPE_CHECKING:
    from actors.store import Store
    from frontends.daemon import DaemonClient
    from protocols.records import Task, WaveTaskRecord

__all__ = ["FINISHING", "Active", "Injector", "Look", "World", "corral_argv", "fingerprint"]

FINISHING = frozenset(
    {
        "planner_finished",
        "implement_finished",
        "implement_task_finished",
        "review_approved",
        "review_changes_requested",
        "verify_approved",
        "verify_failed",
    }
)
"""The signals an agent sends when its step is done: what a duplicate-signal fault sends again."""

_CLI_TIMEOUT_S = 60.0


def corral_argv() -> list[str]:
    """The corral command of this very installation (the same Python, the same source)."""
    return [sys.executable, "-m", "frontends.cli.main"]


def fingerprint(task: Task, waves: Sequence[WaveTaskRecord]) -> tuple[Any, ...]:
    """What changes only when the task moves: its status and phase, its review cycle, its wave tasks'
    statuses and attempts."""
    rows = tuple(sorted((w.wave_number, w.task_number, w.status, w.attempts) for w in waves))
    return (task.status, task.phase, task.review_cycle, rows)


@dataclass(frozen=True)
class Look:
    """What the campaign saw at `now` (monotonic)."""

    now: float
    task: Task
    waves: tuple[WaveTaskRecord, ...]
    procs: tuple[Proc, ...]
    daemon_pid: int | None

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        return fingerprint(self.task, self.waves)

    @property
    def done(self) -> bool:
        return self.task.status in ("done", "cancelled")

    def agents(self) -> list[Proc]:
        """The task's agent processes that run (a stopped one is not a target)."""
        return [p for p in self.procs if p.kind == "agent" and p.task == self.task.name and p.state != "T"]


@dataclass
class World:
    """What injecting needs: the daemon's client, the repository and its project, the tmux socket, the
    store (read), the disk (None: no disk-full), and where to record what the campaign emitted and saw."""

    client: DaemonClient
    repo: Path
    project: str
    socket: str
    store: Store
    disk: ChaosDisk | None = None
    emitted: dict[int, str] = field(default_factory=dict)  # signal id → what it was
    errors: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    stopped: dict[int, str] = field(default_factory=dict)  # pid → title: agents held with SIGSTOP now

    def run_corral(
        self, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a corral command in the repository as a person (with CORRAL_MANAGED in `env`: an agent)."""
        argv = [*corral_argv(), *args]
        try:
            return subprocess.run(
                argv,
                cwd=self.repo,
                env={**os.environ, **(env or {})},
                capture_output=True,
                text=True,
                timeout=_CLI_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            stderr = f"corral: error: (chaos) no end within {_CLI_TIMEOUT_S:g} s: the command was killed"
            return subprocess.CompletedProcess(argv, -9, "", stderr)


@dataclass
class Active:
    """A fault that was injected and has not recovered yet."""

    fault: Fault
    target: str
    task: str
    at: float  # when it was injected
    start: float  # from when its recovery is measured: `at`, or its release
    baseline: tuple[Any, ...]  # the task's fingerprint at `start`
    back: Callable[[Look], bool]  # its own part is back
    needs_progress: bool = True
    release_at: float | None = None
    release: Callable[[], str] | None = None
    note: str = ""


class Injector:
    """Injects faults into `world` and follows their recovery. Used from the campaign's one thread."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._duplicated: set[int] = set()

    def inject(self, fault: Fault, look: Look) -> Active | None:
        """Inject `fault` now, or return None when it has no target at this moment."""
        method = getattr(self, "_" + fault.kind.value.replace("-", "_"))
        return method(fault, look)

    def poll(self, active: Active, look: Look) -> float | None:
        """Release a held fault when its time has come; the recovery time once the system moves again."""
        if active.release is not None:
            if look.now < (active.release_at or 0.0):
                return None
            note = active.release()
            active.release = None
            active.note = "; ".join(filter(None, (active.note, note)))
            active.start, active.baseline = look.now, look.fingerprint
            return None
        if not active.back(look):
            return None
        if active.needs_progress and not look.done and look.fingerprint == active.baseline:
            return None
        return max(0.0, look.now - active.start)

    def release_all(self) -> None:
        """SIGCONT every agent still held and free the disk: the campaign is ending."""
        for pid in list(self.world.stopped):
            _signal(pid, signal.SIGCONT)
        self.world.stopped.clear()
        if self.world.disk is not None:
            self.world.disk.free()

    # -- the kinds ------------------------------------------------------------------------------------------

    def _started(
        self, fault: Fault, look: Look, target: str, back: Callable[[Look], bool], **kw: Any
    ) -> Active:
        return Active(fault, target, look.task.name, look.now, look.now, look.fingerprint, back, **kw)

    def _agent_kill(self, fault: Fault, look: Look) -> Active | None:
        agents = look.agents()
        if not agents:
            return None
        agent = agents[fault.pick % len(agents)]
        _signal(agent.pid, signal.SIGKILL)
        return self._started(fault, look, describe(agent), _always)

    def _tmux_kill(self, fault: Fault, look: Look) -> Active | None:
        servers = [p for p in look.procs if p.kind == "tmux"]
        if not servers or not look.agents():
            return None
        _signal(servers[0].pid, signal.SIGKILL)
        return self._started(fault, look, describe(servers[0]), _always)

    def _daemon_kill(self, fault: Fault, look: Look) -> Active | None:
        old = look.daemon_pid
        if old is None:
            return None
        _signal(old, signal.SIGKILL)
        return self._started(
            fault,
            look,
            f"daemon (pid {old})",
            lambda seen: seen.daemon_pid is not None and seen.daemon_pid != old,
        )

    def _agent_stop(self, fault: Fault, look: Look) -> Active | None:
        # Not a tmux pane's process: the tmux server continues a pane process stopped by any signal but
        # SIGTTIN/SIGTTOU at once (which the agents ignore), so SIGSTOP is no hang there (docs/chaos.md).
        agents = [agent for agent in look.agents() if not agent.in_tmux]
        if not agents:
            return None
        agent = agents[fault.pick % len(agents)]
        _signal(agent.pid, signal.SIGSTOP)
        self.world.stopped[agent.pid] = agent.title

        def release() -> str:
            self.world.stopped.pop(agent.pid, None)
            alive = _signal(agent.pid, signal.SIGCONT)
            return f"held {fault.hold_s:g} s" + ("" if alive else "; it was gone by then (killed by corral)")

        active = self._started(fault, look, describe(agent), _always, release_at=look.now + fault.hold_s)
        active.release = release
        return active

    def _actor_crash(self, fault: Fault, look: Look) -> Active | None:
        from frontends.daemon import DaemonError

        if look.daemon_pid is None:
            return None
        client = self.world.client
        try:
            actors = [a for a in client.call("GET", "/v1/chaos/actors", timeout=5) if a["path"] != "root"]
            if not actors:
                return None
            actor = actors[fault.pick % len(actors)]
            client.call("POST", "/v1/chaos/crash", json={"path": actor["path"]}, timeout=5)
        except DaemonError:
            return None  # down, busy, or the actor ended meanwhile: pick again at the next look
        path, old = actor["path"], actor["urn"]

        def back(seen: Look) -> bool:
            if seen.daemon_pid is None:
                return False
            try:
                now = {a["path"]: a["urn"] for a in client.call("GET", "/v1/chaos/actors", timeout=5)}
            except DaemonError:
                return False
            return now.get(path) != old  # restarted (a new generation), or ended with its work

        return self._started(fault, look, f"actor {path}", back)

    def _bad_signal(self, fault: Fault, look: Look) -> Active | None:
        bad = BAD_SIGNALS[fault.variant % len(BAD_SIGNALS)]
        task = look.task.name
        args = [arg.replace("{task}", task) for arg in bad.args]
        env = _agent_env(task, self.world.project) if bad.as_agent else {}
        done = self.world.run_corral(["signal", "emit", *args], env)
        target = f"signal emit {bad.name}" + (" (as the agent)" if bad.as_agent else "")
        if done.returncode == 0:
            signal_id = _signal_id(done.stdout)
            if signal_id is None:
                self.world.errors.append(f"fault {fault.number}: {target}: no signal id in {done.stdout!r}")
                return self._started(fault, look, target, _always, needs_progress=False)
            self.world.emitted[signal_id] = target
            return self._started(
                fault,
                look,
                target,
                self._settled(fault, signal_id, target, expect_failed=True),
                needs_progress=False,
                note=f"stored as signal {signal_id}",
            )
        _check_refusal(self.world, fault, target, done)
        return self._started(
            fault, look, target, _always, needs_progress=False, note=f"refused: {_first_line(done.stderr)}"
        )

    def _duplicate_signal(self, fault: Fault, look: Look) -> Active | None:
        task = look.task.name
        project_id = self.world.store.get_project(self.world.project).id
        recent = self.world.store.list_signals(project_id, task=task, limit=20)
        originals = [
            s
            for s in recent
            if s.source == "agent" and s.signal_type in FINISHING and s.id not in self._duplicated
        ]
        if not originals:
            return None
        original = originals[0]  # the newest: sent again at once, as an agent that ran its command twice
        self._duplicated.add(original.id)
        args = ["signal", "emit", original.signal_type, task]
        if original.payload:
            args += ["--payload", original.payload]
        done = self.world.run_corral(args, _agent_env(task, self.world.project))
        target = f"signal {original.id} ({original.signal_type}) again"
        if done.returncode != 0:
            _check_refusal(self.world, fault, target, done)
            return self._started(fault, look, target, _always, needs_progress=False, note="refused")
        signal_id = _signal_id(done.stdout)
        if signal_id is None:
            self.world.errors.append(f"fault {fault.number}: {target}: no signal id in {done.stdout!r}")
            return self._started(fault, look, target, _always, needs_progress=False)
        self.world.emitted[signal_id] = target
        self._duplicated.add(signal_id)
        return self._started(
            fault,
            look,
            target,
            self._settled(fault, signal_id, target, expect_failed=True, doubled=True),
            needs_progress=False,
            note=f"stored as signal {signal_id}",
        )

    def _flood(self, fault: Fault, look: Look) -> Active | None:
        from frontends.daemon import DaemonError

        agents = look.agents()
        if not agents or look.daemon_pid is None:
            return None
        agent = agents[fault.pick % len(agents)]
        path = f"/v1/repos/{self.world.project}/instances/{agent.title}/send"
        try:
            self.world.client.call(
                "POST", path, json={"text": f"/flood {fault.variant}", "enter": True}, timeout=10
            )
        except DaemonError:
            return None  # not running any more, or the daemon is busy: pick again at the next look
        target = f"agent {agent.title}: /flood {fault.variant} (MB)"
        return self._started(fault, look, target, lambda seen: seen.daemon_pid is not None)

    def _disk_full(self, fault: Fault, look: Look) -> Active | None:
        disk = self.world.disk
        if disk is None or look.daemon_pid is None:
            return None
        disk.fill()
        client = self.world.client

        def back(seen: Look) -> bool:
            from frontends.daemon import DaemonError

            if seen.daemon_pid is None:
                return False
            try:
                status = client.call("GET", "/v1/status", timeout=5)
            except DaemonError:
                return False
            return not status.get("writes", {}).get("problems")

        def release() -> str:
            disk.free()
            return f"full for {fault.hold_s:g} s"

        active = self._started(fault, look, f"disk {disk.path}", back, release_at=look.now + fault.hold_s)
        active.release = release
        return active

    # -- helpers --------------------------------------------------------------------------------------------

    def _settled(
        self, fault: Fault, signal_id: int, target: str, *, expect_failed: bool, doubled: bool = False
    ) -> Callable[[Look], bool]:
        """The signal is done or failed; a malformed or duplicate one that was applied is recorded."""
        store = self.world.store

        def settled(seen: Look) -> bool:
            found = store.get_signal(signal_id)
            if found.status not in ("done", "failed"):
                return False
            if expect_failed and found.status == "done":
                message = f"fault {fault.number}: {target} was applied (signal {signal_id}: {found.result})"
                if doubled:
                    self.world.violations.append(Violation(DOUBLED, message))
                else:
                    self.world.errors.append(message)
            return True

        return settled


def _always(seen: Look) -> bool:
    return True


def _signal(pid: int, signum: int) -> bool:
    """Send `signum` to `pid`; False when it is gone."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _agent_env(task: str, project: str) -> dict[str, str]:
    return {"CORRAL_MANAGED": "1", "CORRAL_TASK": task, "CORRAL_PROJECT": project}


def _signal_id(stdout: str) -> int | None:
    """The id `corral signal emit` printed: `signal 12 pending: …`."""
    words = stdout.split()
    if len(words) >= 2 and words[0] == "signal" and words[1].isdigit():
        return int(words[1])
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _check_refusal(world: World, fault: Fault, target: str, done: subprocess.CompletedProcess[str]) -> None:
    """A refused emit says why, as `corral: error: …`, with no traceback and no 'unexpected' (a bug)."""
    err = done.stderr
    if not err.startswith("corral: error: ") or "Traceback" in err or "unexpected" in err:
        world.errors.append(f"fault {fault.number}: {target}: exit {done.returncode}: {err.strip()[:300]}")
