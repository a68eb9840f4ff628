"""One chaos campaign: tasks run one after another in a private corral while faults are injected, watched on
one thread that looks at everything every 0.2 s.

    report = Campaign(sandbox, options, say=print).run()      # inside the sandbox's private environment

What each look does, in order:
1. reads the task and its wave tasks from the store, the campaign's processes from /proc, and pings the
   daemon (the store is the record; a killed daemon cannot be asked);
2. samples the process table for two live agents with one title, and feeds the stall watch (a task that
   does not move and shows no waiting reason);
3. follows the fault in flight: releases a hold when its time has come, and records its recovery time once
   the system moves again (chaos_faults.py);
4. acts as the person a waiting task asks for, once the wait has stood for a second (chaos_person.py), and
   as the person who starts implementing a planned task (`implement_start`), as `corral demo` does;
5. injects the next fault of the schedule once the previous one recovered and its pause is over — when it
   has a target: an agent fault waits for an agent.

A task ends done (or, after `task_timeout_s`, not done: a stuck task, cancelled so the campaign goes on). Then
its agents must all be stopped within SETTLE_S, and its audit record is checked (chaos_invariants.py). The
campaign repeats the task until every fault of the schedule was injected. At the end every signal must be
settled, and after the daemon's orderly stop and the cleanup no process of the campaign may be left.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from frontends.cli.chaos_disk import ChaosDisk
from frontends.cli.chaos_faults import Active, Injector, Look, World
from frontends.cli.chaos_invariants import (
    STUCK,
    DuplicateWatch,
    StallWatch,
    Violation,
    check_leaks,
    check_signals,
    check_task,
)
from frontends.cli.chaos_person import person_command
from frontends.cli.chaos_procs import Proc, campaign_processes
from frontends.cli.chaos_report import ChaosReport, FaultRecord, by_kind, invariant_results
from frontends.cli.chaos_schedule import Fault, FaultKind, schedule
from frontends.cli.sandbox import Sandbox, shielded
from protocols.errors import CorralError

if TYPE_CHECKING:
    from actors.store import Store
    from protocols.records import Task

__all__ = ["Campaign", "Options", "chaos_config"]

POLL_S = 0.2
PERSON_DELAY_S = 1.0  # a wait stands this long before the campaign answers it
PERSON_PATIENCE_S = {"agent_waiting": 5.0, "agent_idle": 5.0}  # an agent just resumed may go on by itself
PERSON_REPEAT_S = 10.0  # the same wait, still standing, is answered again after this
SETTLE_S = 15.0  # after a task ends: how long its agents may take to be stopped
DAEMON_START_S = 20.0
API_RETRY_S = 60.0  # how long a request of the campaign's own waits for a daemon that is restarting
FAILED_TASKS_IN_ROW = 3  # this many tasks in a row not done: the campaign stops
_ALL = 2**62


def chaos_config(sim: str) -> tuple[str, ...]:
    """The lines added to the scratch repository's `.corral/config.toml` (everything else is corral's
    defaults):

    - the reviewer and the readiness agent run in a PTY, the planner and the coders in tmux: both runtimes
      meet every fault (and a stopped agent stays stopped only outside tmux, see chaos_faults);
    - every delay after which corral shows that an agent needs a person is scaled to the campaign's time
      scale, under its stall limit (15 s): an agent idle without its signal is nudged after 3 s (not 120), a
      screen frozen while working is hung after 6 s (not 60), one that never showed its prompt is no longer
      "loading" after 5 s (not 30).
    """
    program = json.dumps(sim)  # a JSON string is a TOML basic string for any path
    return (
        "",
        "[agents.reviewer]",
        f"program = {program}",
        'execution_mode = "pty"',
        "",
        "[agents.master]",
        f"program = {program}",
        'execution_mode = "pty"',
        "",
        "[ui]",
        "idle_nudge_s = 3",
        "",
        "[harnesses.corral-sim]",
        "start_timeout_s = 5",
        "quiet_unknown_s = 6",
    )


@dataclass(frozen=True)
class Options:
    faults: int
    seed: int
    kinds: tuple[FaultKind, ...]
    content: str  # the task's content: a brief for the planner, or a plan
    replay: str  # the command line that runs this campaign again
    keep: bool = False
    think_s: float = 1.0  # CORRAL_SIM_THINK: how long each agent turn "thinks", so faults meet busy agents
    stall_s: float = 15.0
    task_timeout_s: float = 240.0
    fault_timeout_s: float = 90.0
    disk_mb: int = 128


@dataclass
class _TaskRun:
    name: str
    task: Task | None = None
    implement_sent: bool = False
    waits_seen: dict[tuple[str, str, str], float] = field(default_factory=dict)  # wait → first seen
    answered: dict[tuple[str, str, str], float] = field(default_factory=dict)  # wait → last answered


class Campaign:
    """One campaign in `sandbox` (already inside its private environment). `run()` returns the report;
    the sandbox is cleaned up whatever happens."""

    def __init__(self, sandbox: Sandbox, options: Options, say: Callable[[str], None]) -> None:
        self.sandbox = sandbox
        self.options = options
        self.say = say
        self.began = time.monotonic()
        self.schedule: deque[Fault] = deque(schedule(options.seed, options.kinds, options.faults))
        self.kinds = options.kinds
        self.skipped: list[str] = []
        self.disk: ChaosDisk | None = None
        self.duplicates = DuplicateWatch()
        self.stalls = StallWatch(options.stall_s)
        self.violations: list[Violation] = []
        self.records: list[FaultRecord] = []
        self.person: Counter[str] = Counter()
        self.errors: list[str] = []
        self.tasks_started = 0
        self.tasks_done = 0
        self.active: Active | None = None
        self.next_at = 0.0
        self.world: World | None = None
        self.injector: Injector | None = None
        self.project_id = 0
        self.cleanup_problems: list[str] = []
        self.interrupted = False

    # -- the whole run --------------------------------------------------------------------------------------

    def run(self) -> ChaosReport:
        try:
            self._campaign()
        except KeyboardInterrupt:
            self.interrupted = True
            self.errors.append("interrupted: the campaign did not finish")
        except CorralError as exc:
            self.errors.append(f"the campaign stopped: {exc}")
        finally:
            with shielded():  # a second Ctrl-C must not leave the sandbox's daemon behind
                self._finish()
        return self._report()

    def environment(self) -> dict[str, str]:
        """What the campaign's daemon and agents need besides the sandbox's variables."""
        return {
            "CORRAL_CHAOS": "1",
            # The heart must outlast every daemon-kill of the campaign.
            "CORRAL_HEART_MAX_RESTARTS": str(2 * self.options.faults + 20),
            "CORRAL_SIM_THINK": f"{self.options.think_s:g}",
        }

    def _campaign(self) -> None:
        from actors.store import Store

        sandbox = self.sandbox
        if FaultKind.DISK_FULL in self.kinds:
            self.disk, why = ChaosDisk.mount(sandbox.scratch.home, self.options.disk_mb)
            if self.disk is None:
                self.skipped.append(why)
                self.kinds = tuple(k for k in self.kinds if k is not FaultKind.DISK_FULL)
                if not self.kinds:
                    raise CorralError(f"no fault kind can be injected here: {why}")
                self.schedule = deque(schedule(self.options.seed, self.kinds, self.options.faults))
        sandbox.make_repo(chaos_config(sandbox.sim))
        started = sandbox.start_daemon(timeout=DAEMON_START_S)
        self.say(f"daemon started (pid {started.pid}, under its heart, pid {started.heart_pid})")
        project = self._call("POST", "/v1/repos", {"path": str(sandbox.scratch.repo)})["name"]
        store = Store.open()
        self.project_id = store.get_project(project).id
        self.world = World(
            client=sandbox.client,
            repo=sandbox.scratch.repo,
            project=project,
            socket=sandbox.scratch.socket,
            store=store,
            disk=self.disk,
        )
        self.injector = Injector(self.world)
        self.next_at = time.monotonic() + (self.schedule[0].gap_s if self.schedule else 0.0)
        failed_in_row = 0
        while self.schedule or self.active is not None:
            self.tasks_started += 1
            done = self._one_task(f"chaos-{self.tasks_started}")
            self.tasks_done += done
            failed_in_row = 0 if done else failed_in_row + 1
            if failed_in_row >= FAILED_TASKS_IN_ROW:
                self.errors.append(
                    f"{failed_in_row} tasks in a row did not finish: the campaign stopped early"
                )
                break

    # -- one task -------------------------------------------------------------------------------------------

    def _one_task(self, name: str) -> bool:
        assert self.world is not None
        project = self.world.project
        self._call("POST", f"/v1/repos/{project}/tasks", {"name": name, "content": self.options.content})
        self._call("POST", f"/v1/repos/{project}/tasks/{name}/transition", {"event": "plan_start"})
        self.say(f"task {name}: planning")
        run = _TaskRun(name)
        deadline = time.monotonic() + self.options.task_timeout_s
        done = False
        while True:
            look = self._look(name)
            run.task = look.task
            self._watch(look)
            if look.done:
                done = look.task.status == "done"
                break
            self._act_as_person(run, look)
            self._maybe_inject(look)
            if time.monotonic() > deadline:
                waiting = look.task.waiting
                shown = f"waiting: {waiting.reason}" if waiting else "no waiting reason shown"
                self.violations.append(
                    Violation(
                        STUCK,
                        f"{name} is not done after {self.options.task_timeout_s:g} s "
                        f"({look.task.display_status}; {shown})",
                    )
                )
                self._cancel(name)
                break
            time.sleep(POLL_S)
        self.say(f"task {name}: {'done' if done else 'NOT done'}")
        self._settle(name)
        self._check_task(name)
        self.stalls.forget(name)
        return done

    def _watch(self, look: Look) -> None:
        """Invariants that are checked while running, and the fault in flight."""
        self.violations += self.duplicates.sample(look.procs)
        task = look.task
        waiting = task.waiting.reason if task.waiting is not None else ""
        if task.status not in ("done", "cancelled"):
            note = f"{task.display_status}; agents: " + (
                ", ".join(f"{p.title} ({p.state})" for p in look.procs if p.kind == "agent") or "none"
            )
            stall = self.stalls.observe(
                look.now, task.name, look.fingerprint, waiting, look.daemon_pid is not None, note
            )
            if stall is not None:
                stall = Violation(stall.invariant, f"{stall.what}; {self._stall_detail(task.name)}")
                self.violations.append(stall)
                self.say(f"STUCK: {stall.what}")
        self._follow_fault(look)

    def _follow_fault(self, look: Look) -> None:
        if self.active is None or self.injector is None:
            return
        active = self.active
        try:
            recovered = self.injector.poll(active, look)
        except CorralError as exc:
            self.errors.append(f"fault {active.fault.number} ({active.fault.kind}): {exc}")
            recovered = None
            active.at = -1e9  # give it up now
        timed_out = look.now - active.at > self.options.fault_timeout_s
        if recovered is None and not timed_out:
            return
        self.records.append(
            FaultRecord(
                number=active.fault.number,
                kind=str(active.fault.kind),
                target=active.target,
                task=active.task,
                at_s=round(active.at - self.began, 2),
                recovery_s=None if recovered is None else round(recovered, 3),
                note=active.note,
            )
        )
        after = "did not recover" if recovered is None else f"moving again after {recovered:.2f} s"
        self.say(f"fault {active.fault.number} {active.fault.kind} ({active.target}): {after}")
        self.active = None
        if self.schedule:
            self.next_at = look.now + self.schedule[0].gap_s

    def _maybe_inject(self, look: Look) -> None:
        if self.active is not None or not self.schedule or look.now < self.next_at or self.injector is None:
            return
        if look.task.status not in ("planning", "implementing", "reviewing", "verifying"):
            return
        fault = self.schedule[0]
        try:
            active = self.injector.inject(fault, look)
        except CorralError as exc:
            self.errors.append(f"fault {fault.number} ({fault.kind}) could not be injected: {exc}")
            self.schedule.popleft()
            return
        if active is None:
            return  # no target now: try again at the next look
        self.schedule.popleft()
        self.active = active
        self.say(f"fault {fault.number} {fault.kind}: {active.target}")

    def _act_as_person(self, run: _TaskRun, look: Look) -> None:
        assert self.world is not None
        task = look.task
        if task.display_status == "planned" and not run.implement_sent:
            status, _ = self._request(
                "POST",
                f"/v1/repos/{self.world.project}/tasks/{task.name}/transition",
                {"event": "implement_start"},
            )
            run.implement_sent = status == 200
            return
        waiting = task.waiting
        if waiting is None:
            return
        key = (waiting.kind, waiting.since, waiting.agent)
        if waiting.agent in self.world.stopped.values():
            run.waits_seen.pop(key, None)  # a hold of the campaign's own: its release answers it
            return
        first = run.waits_seen.setdefault(key, look.now)
        last = run.answered.get(key)
        patience = PERSON_PATIENCE_S.get(waiting.kind, PERSON_DELAY_S)
        if look.now - first < patience or (last is not None and look.now - last < PERSON_REPEAT_S):
            return
        argv = person_command(waiting)
        if argv is None:
            return
        run.answered[key] = look.now
        done = self.world.run_corral(argv[1:])
        verb = " ".join(argv[:4])
        self.person[verb] += 1
        outcome = "ok" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[:200]}"
        self.say(f"as a person: {' '.join(argv)} ({waiting.kind}) → {outcome}")
        if "Traceback" in done.stderr or "unexpected" in done.stderr:
            self.errors.append(f"{' '.join(argv)}: {done.stderr.strip()[:300]}")

    def _stall_detail(self, name: str) -> str:
        """What a person would look at next: the task's agents as `corral instance list` shows them, and
        its last audit rows."""
        assert self.world is not None
        store = self.world.store
        agents = [
            f"{r.title} {r.status} ({r.reason})"
            for r in store.list_instances(self.world.project)
            if r.task == name and r.status not in ("exited", "failed")
        ]
        rows = [f"{r.kind}: {r.message}" for r in store.list_audit(self.project_id, task=name, limit=4)]
        return f"instances: {', '.join(agents) or 'none live'}; last audit rows: {' | '.join(reversed(rows))}"

    def _settle(self, name: str) -> None:
        """After the task ended: holds released, the fault in flight followed to its end, and every agent of
        the task stopped within SETTLE_S (a leak otherwise)."""
        assert self.injector is not None
        if self.active is not None and self.active.release is not None and self.active.task == name:
            self.active.release_at = 0.0  # the task is over: let go now
        deadline = time.monotonic() + SETTLE_S
        while True:
            look = self._look(name)
            self._watch(look)
            left = [p for p in look.procs if p.kind == "agent" and p.task == name]
            if (
                not left and (self.active is None or self.active.task != name)
            ) or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        if left:
            self.violations += check_leaks(left, f"{SETTLE_S:g} s after {name} ended")

    def _check_task(self, name: str) -> None:
        assert self.world is not None
        store = self.world.store
        task = store.get_task(self.project_id, name)
        audit = list(reversed(store.list_audit(self.project_id, task=name, limit=_ALL)))
        self.violations += check_task(task, audit, store.list_wave_tasks(task.id))

    def _cancel(self, name: str) -> None:
        assert self.world is not None
        self._request("POST", f"/v1/repos/{self.world.project}/tasks/{name}/transition", {"event": "cancel"})

    # -- the end --------------------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Release what is held, check the signals, stop the daemon in order, clean up, and check that no
        process of the campaign is left."""
        if self.injector is not None:
            self.injector.release_all()
        world = self.world
        if world is not None:
            self._signals_settle(world.store)
            self.violations += check_signals(
                world.store.list_signals(self.project_id, limit=_ALL),
                world.store.list_audit(self.project_id, limit=_ALL),
                world.emitted,
            )
            self.violations += world.violations
            self.errors += world.errors
            agents = [p for p in self._procs() if p.kind == "agent"]
            self.violations += check_leaks(agents, "after every task ended")
        try:
            self.sandbox.client.stop(timeout=30)
        except (CorralError, OSError) as exc:
            self.errors.append(f"the daemon did not stop in order: {exc}")
        self._wait_gone(lambda p: p.kind in ("daemon", "heart"), "after corral daemon stop")
        if world is not None:
            world.store.close()
        if self.disk is not None:
            problem = self.disk.unmount(keep=self.options.keep)
            if problem:
                self.cleanup_problems.append(problem)
        self.cleanup_problems += self.sandbox.clean_up(keep=self.options.keep)
        self._wait_gone(lambda p: True, "after the cleanup", kill=True)

    def _signals_settle(self, store: Store, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not store.list_signals(self.project_id, statuses=("pending", "processing"), limit=1):
                return
            time.sleep(POLL_S)

    def _wait_gone(self, which: Callable[[Proc], bool], when: str, *, kill: bool = False) -> None:
        deadline = time.monotonic() + 10.0
        while (left := [p for p in self._procs() if which(p)]) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        self.violations += check_leaks(left, when)
        if kill:
            for proc in left:  # leave nothing behind: the violation is recorded
                try:
                    os.kill(proc.pid, 9)
                except OSError:
                    pass

    def _report(self) -> ChaosReport:
        violations = [*self.violations]
        results = invariant_results(violations)
        ok = all(r.count == 0 for r in results) and not self.errors
        return ChaosReport(
            ok=ok,
            seed=self.options.seed,
            replay=self.options.replay,
            seconds=round(time.monotonic() - self.began, 1),
            faults_requested=self.options.faults,
            faults_injected=len(self.records),
            kinds=tuple(str(k) for k in self.kinds),
            by_kind=by_kind(self.records, [str(k) for k in self.kinds]),
            skipped=tuple(self.skipped),
            tasks_started=self.tasks_started,
            tasks_done=self.tasks_done,
            invariants=results,
            person_actions=dict(self.person),
            errors=tuple(self.errors),
            faults=tuple(self.records),
            scratch=str(self.sandbox.scratch.root),
            kept=self.options.keep,
            cleanup_problems=tuple(self.cleanup_problems),
        )

    # -- looking and asking ---------------------------------------------------------------------------------

    def _procs(self) -> list[Proc]:
        scratch = self.sandbox.scratch
        return campaign_processes(scratch.home, scratch.socket)

    def _look(self, name: str) -> Look:
        from protocols.errors import StoreError

        assert self.world is not None
        store = self.world.store
        deadline = time.monotonic() + API_RETRY_S
        while True:
            try:
                task = store.get_task(self.project_id, name)
                waves = tuple(store.list_wave_tasks(task.id))
                break
            except StoreError:  # busy, or a full disk's moment: reading goes on once it passes
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_S)
        pong = self.sandbox.client.ping(timeout=1.0)
        pid = int(pong["pid"]) if pong is not None else None
        return Look(time.monotonic(), task, waves, tuple(self._procs()), pid)

    def _request(self, method: str, path: str, body: object) -> tuple[int, object]:
        """One request of the campaign's own, waiting (up to API_RETRY_S) for a daemon that is down."""
        from frontends.daemon import DaemonError

        deadline = time.monotonic() + API_RETRY_S
        while True:
            try:
                return self.sandbox.client.request(method, path, json=body, timeout=10)
            except DaemonError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_S)

    def _call(self, method: str, path: str, body: object) -> dict:
        status, answer = self._request(method, path, body)
        if not 200 <= status < 300:
            raise CorralError(f"{method} {path} answered {status}: {answer}")
        assert isinstance(answer, dict)
        return answer
