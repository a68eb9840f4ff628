"""TmuxRuntime: an agent in a session of corral's own tmux server (`tmux -L corral`); it outlives the daemon.

    server = TmuxServer()                          # tmux -L corral -f /dev/null; tests: their own socket
    ChildSpec.worker("runtime", TmuxRuntime, spec, server,
                     restart=Restart.TRANSIENT, backoff=BackoffSpec(min_s=0.5, max_s=30))

Life of one generation:

- `started()` creates the session in one tmux call: history-limit and remain-on-exit, the pane (argv
  exec'd, no shell; env by `-e`, plus `CORRAL_RUNTIME_TOKEN`), status off, window-size manual, and the
  output pipe. If a session of that name exists, a live one is adopted (`adopted=True`: the daemon
  restarted) and a dead one (its agent exited while no daemon watched) is swept and replaced. A missing cwd
  or command fails the start with a message that says so, rather than a pane that dies at once.
- Output is pushed: the pane's bytes go through `pipe-pane` into a FIFO read by the server's one output
  thread (tmux_output.py), appended to `spec.log_path` (rotated) and counted; the actor gets one `Output`
  per 20 ms at most and tells its Instance `RuntimeActivity`. The screen is captured only when asked.
- The agent's exit is pushed too (`PaneDied`, from a pidfd on the agent's pid): status 0 ends the runtime
  `normal`, anything else with an error ("killed by SIGKILL", "exit status 3") that its Instance restarts
  with backoff. First the dead pane (kept by remain-on-exit) is captured and handed to the Instance
  (`AgentLastScreen`): what the agent printed last is the reason it gives for its exit. Before the runtime
  ends, what the agent left behind is killed — its session, and every process carrying its token, which
  finds a setsid grandchild orphaned by the agent's death — and the dead session removed, so a restart
  never runs next to the previous agent's children. A session killed from
  outside (or a tmux server that ended) ends the runtime with `SessionGone`.
- An orderly stop (`stopping()`, e.g. the daemon shutting down) closes corral's side only — the FIFO, the
  log, the pipe — and leaves the agent running for the next generation to adopt; so does a kill hook.
  `Destroy` kills the session and every process of the agent's tree, sessions and token, and returns the
  survivors (none, normally).

Input: `Send` clears the line (C-u), types or pastes the text, and presses Enter `spec.settle_s` later by
the scheduler (the actor never sleeps). Input that arrives while an Enter is pending waits for it, so a
second message's C-u can never wipe the first one before it was submitted.

Why pipe-pane and not control mode. Both push output. Measured on this 2-core VM, tmux 3.3a, 50 agents, one
selector thread reading either FIFOs or control clients' stdout (make bench:
test_bench_output_push_pipe_pane_vs_control_mode):

    |                                      | pipe-pane → FIFO | one control client per session (-C) |
    | idle CPU, 50 agents, 5 s             | ≈0 (2 ms)        | ≈0 (2-3 ms)                          |
    | output → reader latency, median/p95  | 0.4-0.5/0.5 ms   | 0.5-0.6/0.8-1.4 ms                   |
    | tmux server CPU per MB               | 33-35 ms         | 83-95 ms (it octal-escapes each byte)|
    | helper CPU per MB                    | 2 ms (cat)       | 0 (the server writes to our pipe)    |
    | reader CPU per MB                    | 3-4 ms           | 9-11 ms (split lines, unescape)      |
    | processes per agent, RSS             | 1 cat, 1.6 MB    | 1 tmux client, 3.6 MB                |

Control mode would make a capture cheaper (0.2 ms over the client instead of a 2.5 ms tmux process), but
corral captures only when output changed or when asked, while output is continuous: pipe-pane costs the
tmux server a third, corral less than half, hands over the bytes unescaped, and needs no per-agent command
channel. A control client sees `%output` only for the session it is attached to, so it takes one client
per agent too. Neither reports an agent's death reliably (a dead pane keeps its pipe open under
remain-on-exit, control mode has no pane-death notification, and the pane-died hook waits on a tmux that
may not reap the agent promptly — see tmux_output.py), so deaths come from a pidfd either way. After a
daemon restart both are re-armed the same way: `pipe-pane` replaces the old pipe, whose `cat` ends.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import shutil
import threading
import time
from typing import Any

import msgspec
import pykka

from actors.runtimes.base import (
    LAST_SCREEN_LINES,
    AttachInfo,
    RuntimeActor,
    RuntimeSpec,
    RuntimeStats,
    agent_exit_reason,
)
from actors.runtimes.procinfo import (
    TOKEN_VAR,
    CpuSampler,
    RuntimeMetrics,
    kill_tree,
    read_stat,
    tagged_sessions,
    tree,
)
from actors.runtimes.tmux_output import Output, PaneDied, PipeClosed, Tap, TapEvent
from actors.runtimes.tmux_server import (
    PaneInfo,
    SessionExists,
    TmuxError,
    TmuxServer,
    list_sessions,
    session_name,
)
from actors.scheduler import TimerHandle
from actors.supervision.context import ChildContext
from protocols.errors import UsageError
from protocols.messages import ExitReason

__all__ = ["TmuxError", "TmuxRuntime", "TmuxServer", "default_server", "list_sessions", "session_name"]

log = logging.getLogger(__name__)

_DEAD_PANE = re.compile(r"^Pane is dead \((?:status|signal) ")  # remain-on-exit's notice
_default_lock = threading.Lock()
_default: TmuxServer | None = None


def default_server() -> TmuxServer:
    """The daemon's server: `tmux -L corral` (one per process)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TmuxServer()
        return _default


class _PressEnter(msgspec.Struct, frozen=True):
    token: int


class _Text(msgspec.Struct, frozen=True):
    text: str
    enter: bool


class _Keys(msgspec.Struct, frozen=True):
    keys: tuple[str, ...]


class TmuxRuntime(RuntimeActor):
    """One agent in one tmux session. Every method runs on the actor's thread."""

    kind = "tmux"

    def __init__(self, ctx: ChildContext, spec: RuntimeSpec, server: TmuxServer | None = None) -> None:
        super().__init__(ctx, spec)
        self.server = server or default_server()
        self._pane: PaneInfo | None = None
        self._tap: Tap | None = None
        self._adopted = False
        self._dead = False  # the agent exited, or its session is gone
        self._destroyed = False
        self._bytes_before = 0  # read by taps already closed
        self._last_output: float | None = None
        self._started_at = time.monotonic()
        self._cpu = CpuSampler()
        self._inputs: collections.deque[_Text | _Keys] = collections.deque()
        self._enter: TimerHandle | threading.Timer | None = None
        self._enter_token = 0
        # Stable across generations and daemon restarts (an adopted agent carries the same one), and put in
        # the agent's environment: it finds a setsid grandchild that was orphaned when the agent died.
        self.token = f"tmux-{self.server.socket}-{spec.name}"

    # -- lifecycle ----------------------------------------------------------------------------------------

    def started(self) -> None:
        self.ctx.handle.add_kill_hook(self._close_tap)
        if self.spec.adopt_first:
            hint = self.server.recent_session(self.spec.name)
            if hint is not None and not hint.dead and self._adopt(hint):
                return  # one pipe-pane call: no failed new-session, no lookup of its own
        try:
            self._create()  # the common case, in one tmux call: there is no such session yet
            return
        except SessionExists:
            pass
        except UsageError:
            # The command or cwd is gone; an agent started before that may still run: adopt it if so.
            found = self.server.find_session(self.spec.name)
            if found is None or found.dead or not self._adopt(found):
                raise
            return
        found = self.server.find_session(self.spec.name)
        if found is not None and not found.dead and self._adopt(found):
            return
        if found is not None:
            self._remove_dead(found)
        self._create()

    def _adopt(self, pane: PaneInfo) -> bool:
        tap = self._open_tap()
        try:
            self.server.pipe_pane(pane.pane_id, tap.fifo)
        except TmuxError:
            self._close_tap()
            again = self.server.find_session(self.spec.name)
            if again is None or again.dead:
                return False  # it died just now: start afresh
            raise
        tap.bind(pane.pane_id, pane.pid)
        self._pane, self._adopted = pane, True
        self._started_at = _process_started_at(pane.pid)
        if pane.activity is not None:
            # The screen is as old as the pane's last output: say so, so the Instance reads it at once and
            # an idle agent is ready now rather than after a settle period counted from the adoption.
            now = time.monotonic()
            self._last_output = now - max(0.0, time.time() - pane.activity)
            self.notify_adopted(self._last_output)
        log.info("%s: adopted the running agent (pid %d)", self.spec.name, pane.pid)
        return True

    def _create(self) -> None:
        spec = self.spec
        _check_launch(spec)
        tap = self._open_tap()
        try:
            self._pane = self.server.new_session(
                spec.name,
                spec.argv,
                cwd=spec.cwd,
                env=(*spec.env, (TOKEN_VAR, self.token)),
                cols=spec.cols,
                rows=spec.rows,
                history_lines=spec.history_lines,
                pipe_to=tap.fifo,
            )
        except BaseException:
            self._close_tap()
            raise
        tap.bind(self._pane.pane_id, self._pane.pid)
        self._started_at = time.monotonic()

    def stopping(self) -> None:
        self._cancel_enter()
        self._inputs.clear()
        pending = self._close_tap()
        if pending:
            self._activity(pending)
        pane = self._pane
        if pane is None or self._destroyed:
            return
        try:
            if self._dead:
                self._remove_dead(pane)
            else:
                # Orderly stop: the agent lives on for the next generation; only corral's pipe is closed.
                self.server.pipe_pane(pane.pane_id, None)
        except TmuxError as exc:
            log.debug("%s: while stopping: %s", self.spec.name, exc)

    def _remove_dead(self, pane: PaneInfo) -> None:
        """Kill what a dead agent left behind, then its session (it would stay, dead, for a person to see)."""
        kill_tree(None, sids={pane.pid} | tagged_sessions(self.token), grace_s=1.0)
        self.server.kill_session(pane.session)

    # -- output and exit (told by the output thread) ------------------------------------------------------

    def on_runtime_message(self, message: Any) -> Any:
        if isinstance(message, Output | PaneDied | PipeClosed):
            return self._on_tap_event(message)
        if isinstance(message, _PressEnter):
            return self._press_enter(message.token)
        return super().on_runtime_message(message)

    def _on_tap_event(self, event: TapEvent) -> None:
        if self._tap is None or event.tap_id != self._tap.id:
            return  # from a tap this generation already closed
        if isinstance(event, Output):
            self._activity(event.nbytes)
        elif isinstance(event, PaneDied):
            self._agent_exited(event.status, event.signal)
        else:
            self._pipe_closed()

    def _activity(self, nbytes: int) -> None:
        now = self.ctx.env.clock.monotonic()
        self._last_output = now
        try:
            self.notify_activity(nbytes, now)
        except pykka.ActorDeadError:
            pass  # the Instance is stopping (it stops us on its way out)

    def _agent_exited(self, status: int | None, signal: int | None) -> None:
        if self._dead:
            return
        self._dead = True
        reason = agent_exit_reason(status, signal)
        log.info("%s: the agent ended: %s", self.spec.name, reason)
        self._hand_over_last_screen(killed=bool(signal))
        self.exit(reason)

    def _hand_over_last_screen(self, killed: bool) -> None:
        """The dead pane's screen and history (remain-on-exit keeps them until the session is removed), for
        the Instance: the agent's last words are its exit's reason. A signal's victim said nothing of it."""
        pane = self._pane
        if pane is None:
            return
        try:
            screen = self.server.capture(pane.pane_id, LAST_SCREEN_LINES)
        except TmuxError as exc:
            log.debug("%s: no last screen: %s", self.spec.name, exc)
            return
        lines = screen.rstrip("\n").split("\n")
        if lines and _DEAD_PANE.match(lines[-1]):
            lines.pop()  # tmux's own line under a dead pane, not the agent's
        self.notify_last_screen("\n".join(lines).rstrip("\n"), "" if killed else None)

    def _pipe_closed(self) -> None:
        pane = self._pane
        info = self.server.pane_info(pane.pane_id, pane.session) if pane is not None else None
        if info is None:
            self._dead = True
            self._pane = None  # nothing of it is left to clean
            self.exit(
                ExitReason.error(
                    "SessionGone",
                    f"tmux session {self.spec.name} is gone (killed outside corral, or the tmux server "
                    f"-L {self.server.socket} ended)",
                )
            )
        elif info.dead:
            self._agent_exited(info.dead_status, info.dead_signal)
        else:
            log.warning("%s: the output pipe was closed by someone else: re-arming it", self.spec.name)
            if pending := self._close_tap():
                self._activity(pending)
            tap = self._open_tap()
            self.server.pipe_pane(info.pane_id, tap.fifo)
            tap.bind(info.pane_id, info.pid)

    def _open_tap(self) -> Tap:
        spec = self.spec
        ref = self.actor_ref

        def sink(event: TapEvent) -> None:
            try:
                ref.tell(event)
            except pykka.ActorDeadError:
                pass  # this generation has ended; the next one has its own tap

        self._tap = self.server.pump.attach(
            spec.name, spec.log_path, sink, max_bytes=spec.log_max_bytes, backups=spec.log_backups
        )
        return self._tap

    def _close_tap(self) -> int:
        """Close corral's side of the output (also the kill hook: it runs on the supervisor's thread)."""
        tap, self._tap = self._tap, None
        if tap is None:
            return 0
        pending = tap.close()
        self._bytes_before += tap.bytes_read  # after close: it drains what was left in the FIFO
        return pending

    # -- the interface ------------------------------------------------------------------------------------

    def send(self, text: str, enter: bool) -> None:
        self._input(_Text(text, enter))

    def send_keys(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            if not key or not key.isprintable() or " " in key:
                raise UsageError(f"send-keys: {key!r} is not a key name")
        self._input(_Keys(tuple(keys)))

    def _input(self, item: _Text | _Keys) -> None:
        if self._enter is not None or self._inputs:
            self._inputs.append(item)  # after the pending Enter, in order
            return
        self._deliver(item)

    def _deliver(self, item: _Text | _Keys) -> None:
        pane_id = self._pane_id()
        if isinstance(item, _Keys):
            self.server.send_keys(pane_id, item.keys)
            return
        self.server.send_text(pane_id, item.text)
        if not item.enter:
            return
        if self.spec.settle_s <= 0:
            self.server.send_keys(pane_id, ("Enter",))
            return
        self._enter_token += 1
        token, ref = self._enter_token, self.actor_ref

        def press() -> None:
            try:
                ref.tell(_PressEnter(token))
            except pykka.ActorDeadError:
                pass

        scheduler = self.ctx.env.scheduler
        if scheduler is not None:
            self._enter = scheduler.call_later(self.spec.settle_s, press)
        else:
            timer = threading.Timer(self.spec.settle_s, press)
            timer.daemon = True
            timer.start()
            self._enter = timer

    def _press_enter(self, token: int) -> None:
        if token != self._enter_token or self._enter is None:
            return
        self._enter = None
        try:
            self.server.send_keys(self._pane_id(), ("Enter",))
            while self._inputs and self._enter is None:
                self._deliver(self._inputs.popleft())
        except (TmuxError, UsageError) as exc:
            # Told, not asked: nobody to answer. A pane that is gone is reported by the output thread.
            log.warning("%s: queued input not delivered: %s", self.spec.name, exc)
            self._inputs.clear()

    def _cancel_enter(self) -> None:
        enter, self._enter = self._enter, None
        if enter is not None:
            enter.cancel()

    def capture(self, lines: int | None, ansi: bool) -> str:
        return self.server.capture(self._pane_id(), lines, ansi=ansi)

    def is_alive(self) -> bool:
        pane = self._pane
        if self._dead or pane is None:
            return False
        info = self.server.pane_info(pane.pane_id, pane.session)
        return info is not None and not info.dead

    def destroy(self) -> list[int]:
        """Kill the session and every process of the agent; return the pids that survived (normally [])."""
        self._cancel_enter()
        self._inputs.clear()
        pane = self._pane
        self._destroyed = self._dead = True
        pending = self._close_tap()
        if pending:
            self._activity(pending)
        if pane is None:
            return []
        # The tree first: once the session is killed, a setsid grandchild is reparented and only its
        # session id (recorded here) still ties it to the agent.
        sids = {st.sid for st in tree(pane.pid)} | {pane.pid} | tagged_sessions(self.token)
        try:
            self.server.kill_session(pane.session)
        except TmuxError as exc:
            log.warning("%s: kill-session failed (%s); killing the processes anyway", self.spec.name, exc)
        survivors = kill_tree(pane.pid, sids=sids)
        if survivors:
            log.error("%s: processes survived destroy: %s", self.spec.name, survivors)
        return survivors

    def attach_info(self) -> AttachInfo:
        return AttachInfo(
            kind="tmux",
            argv=(self.server.tmux, "-L", self.server.socket, "attach-session", "-t", f"={self.spec.name}"),
            detail=f"detach with ctrl-q; the agent keeps running (socket -L {self.server.socket})",
        )

    def metrics(self) -> RuntimeMetrics:
        pane = self._pane
        return self._cpu.sample(pane.pid if pane is not None and not self._dead else None, self._started_at)

    def resize(self, cols: int, rows: int) -> None:
        if cols < 2 or rows < 2:
            raise UsageError(f"resize: {cols}x{rows} is too small")
        self.server.resize(self._pane_id(), cols, rows)

    def statistics(self) -> RuntimeStats:
        pane, tap = self._pane, self._tap
        return RuntimeStats(
            name=self.spec.name,
            kind=self.kind,
            alive=pane is not None and not self._dead,
            pid=pane.pid if pane is not None else None,
            bytes_read=self._bytes_before + (tap.bytes_read if tap is not None else 0),
            last_output_at=self._last_output,
            adopted=self._adopted,
            started_at=self._started_at,
        )

    def _pane_id(self) -> str:
        if self._pane is None or self._destroyed:
            raise UsageError(f"runtime {self.spec.name}: the agent is not running")
        return self._pane.pane_id


def _check_launch(spec: RuntimeSpec) -> None:
    """Fail the start with a useful message instead of creating a pane that dies at once."""
    if not os.path.isdir(spec.cwd):
        raise UsageError(f"runtime {spec.name}: working directory {spec.cwd} does not exist")
    program = spec.argv[0]
    if "/" in program:
        path = program if os.path.isabs(program) else os.path.join(spec.cwd, program)
        if not os.access(path, os.X_OK):
            raise UsageError(f"runtime {spec.name}: {program} is not an executable file")
        return
    env_path = dict(spec.env).get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(program, path=env_path) is None:
        raise UsageError(f"runtime {spec.name}: command {program!r} not found on PATH")


def _process_started_at(pid: int) -> float:
    """The monotonic time at which `pid` started (an adopted agent's uptime counts from its start)."""
    st = read_stat(pid)
    if st is None:
        return time.monotonic()
    try:
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except OSError:
        return time.monotonic()
    age = max(0.0, uptime - st.start_ticks / os.sysconf("SC_CLK_TCK"))
    return time.monotonic() - age
