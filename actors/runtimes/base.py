"""The one runtime interface: what an Instance asks of the actor that runs its agent, whatever runs it.

    create      started() adopts a live agent of the same name or starts one (tmux agents outlive the daemon)
    send        Send(text) — C-u first, long or multi-line text pasted, Enter after the harness's settle delay
    capture     Capture(lines=N) — the last N lines of the screen, or Capture() for the full history
    is_alive    IsAlive()
    destroy     Destroy() — kill the agent and every process it started, check for survivors
    attach_info GetAttachInfo() — how a person gets at the agent's terminal
    metrics     GetMetrics() — cpu %, rss, uptime of the agent's process tree

A runtime actor is a child of its Instance with restart type transient: when the agent exits with status 0
the runtime ends `normal` and stays down; when it dies any other way the runtime ends with an error reason
("exit status 137", "killed by SIGKILL") and its Instance restarts it with backoff. Output is pushed, never
polled on a timer: the runtime tells its Instance `RuntimeActivity` (coalesced) when the agent wrote
something, and the Instance captures the screen only then.

When the agent ends by itself, the runtime tells its Instance `AgentLastScreen` before it reports its own end:
the agent's last screen as the runtime saw it (bounded: `LAST_SCREEN_LINES`, `LAST_SCREEN_BYTES`) and what
the agent said last (`protocols.status.last_words`, or an sdk agent's last error), which the exit reason
quotes — "exit status 1: Unable to connect to Anthropic services / …" rather than "exit status 1".
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
import pykka

from actors.runtimes.procinfo import RuntimeMetrics
from actors.supervision import SupervisedActor
from actors.supervision.context import ChildContext
from protocols.errors import UsageError
from protocols.messages import ExitReason
from protocols.status import last_words

__all__ = [
    "LAST_SCREEN_BYTES",
    "LAST_SCREEN_LINES",
    "AgentLastScreen",
    "AttachInfo",
    "Capture",
    "Destroy",
    "GetAttachInfo",
    "GetMetrics",
    "GetRuntimeStats",
    "IsAlive",
    "Resize",
    "RuntimeActivity",
    "RuntimeActor",
    "RuntimeAdopted",
    "RuntimeMetrics",
    "RuntimeSpec",
    "RuntimeStats",
    "Send",
    "SendKeys",
    "agent_exit_reason",
    "bounded_screen",
    "exit_details",
    "valid_session_name",
]

_NAME = re.compile(r"[a-zA-Z0-9_-]+")

LAST_SCREEN_LINES = 2000
LAST_SCREEN_BYTES = 256 * 1024


def valid_session_name(name: str) -> str:
    """Runtime names end up as tmux session names and file names: [a-zA-Z0-9_-]+ only."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"invalid runtime name {name!r}: use letters, digits, '_' and '-' only")
    return name


class RuntimeSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to start (or restart, or re-adopt) one agent; built by its Instance."""

    name: str  # corral_<project>_<title>, slugged: the tmux session name and the log's name
    argv: tuple[str, ...]  # the agent's command, already wrapped (nice/ionice)
    cwd: str
    env: tuple[tuple[str, str], ...] = ()  # added to the agent's environment
    log_path: str
    log_max_bytes: int = 8 * 1024 * 1024
    log_backups: int = 3
    cols: int = 200
    rows: int = 50
    history_lines: int = 10_000
    ring_bytes: int = 4 * 1024 * 1024  # pty: the in-memory output kept for capture
    settle_s: float = 0.3  # between pasting text and pressing Enter (per harness)
    sdk_transport: Literal["", "codex", "claude"] = ""
    sdk_session_id: str = ""  # resume this conversation (sdk)
    adopt_first: bool = False
    """A recorded agent brought back after a daemon restart: its tmux session most likely still runs, so the
    runtime looks for it first (in a pane snapshot shared by every agent brought back) and creates a
    session only when there is none; a new agent tries to create first."""

    def __post_init__(self) -> None:
        valid_session_name(self.name)
        if not self.argv:
            raise UsageError(f"runtime {self.name}: empty command")


# -- what an Instance asks (ask: each returns a reply; errors go back to the asker) -------------------------


class Send(msgspec.Struct, frozen=True):
    text: str
    enter: bool = True


class SendKeys(msgspec.Struct, frozen=True):
    """Keys by name (tmux key names: "Enter", "Escape", "C-c", "y"), sent as keys, not text."""

    keys: tuple[str, ...]


class Capture(msgspec.Struct, frozen=True):
    lines: int | None = 50  # None: the full history
    ansi: bool = False


class IsAlive(msgspec.Struct, frozen=True):
    pass


class GetAttachInfo(msgspec.Struct, frozen=True):
    pass


class GetMetrics(msgspec.Struct, frozen=True):
    pass


class GetRuntimeStats(msgspec.Struct, frozen=True):
    """→ RuntimeStats: the runtime's own counters and the agent's pid, without scanning /proc."""


class Resize(msgspec.Struct, frozen=True):
    cols: int
    rows: int


class Destroy(msgspec.Struct, frozen=True):
    """Kill the agent and everything it started; the runtime then ends `normal` (not restarted)."""


class AttachInfo(msgspec.Struct, frozen=True):
    kind: Literal["tmux", "pty", "none"]
    argv: tuple[str, ...] = ()  # what a person runs to attach (tmux), empty when corral must proxy it
    detail: str = ""


class RuntimeStats(msgspec.Struct, frozen=True):
    name: str
    kind: str
    alive: bool
    pid: int | None
    bytes_read: int
    last_output_at: float | None  # monotonic
    adopted: bool  # found running at start (re-adopted after a daemon restart) rather than started
    started_at: float | None = None  # when the agent's process started (time.monotonic): its uptime's start


# -- what a runtime tells its Instance ----------------------------------------------------------------------


class RuntimeActivity(msgspec.Struct, frozen=True):
    """The agent wrote `nbytes` since the last notice (coalesced: at most one per flush interval)."""

    child_id: str
    generation: int
    nbytes: int
    at: float  # monotonic


class RuntimeAdopted(msgspec.Struct, frozen=True):
    """The runtime adopted a live agent whose last output was at `quiet_since` (monotonic): its screen can be
    read at once, and has been still since then."""

    child_id: str
    generation: int
    quiet_since: float


class AgentLastScreen(msgspec.Struct, frozen=True):
    """The agent ended: its last screen (the transcript's tail, sdk) and what it said last ("" if nothing),
    told just before the runtime's own exit report, so the Instance has them when it decides the status."""

    child_id: str
    generation: int
    screen: str
    said: str


def bounded_screen(text: str) -> str:
    """The last LAST_SCREEN_LINES lines of `text`, and of those at most LAST_SCREEN_BYTES (whole lines)."""
    lines = text.split("\n")[-LAST_SCREEN_LINES:]
    out: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line.encode("utf-8", errors="replace")) + 1
        if size > LAST_SCREEN_BYTES:
            break
        out.append(line)
    return "\n".join(reversed(out))


def agent_exit_reason(exit_status: int | None, signal_number: int | None) -> ExitReason:
    """How an agent's own exit ends its runtime: status 0 → normal, anything else → error with the cause."""
    if signal_number:
        import signal as _signal

        try:
            name = _signal.Signals(signal_number).name
        except ValueError:
            name = f"signal {signal_number}"
        return ExitReason.error("AgentKilled", f"killed by {name}")
    if exit_status == 0:
        return ExitReason.normal()
    return ExitReason.error("AgentExited", f"exit status {exit_status}")


_EXIT_STATUS = re.compile(r"exit status (-?\d+)")


def exit_details(reason: ExitReason) -> tuple[int | None, int | None]:
    """(exit status, signal number) back from a reason `agent_exit_reason` made; (None, None) otherwise."""
    if reason.kind == "normal":
        return 0, None
    if reason.error_type == "AgentKilled":
        import signal as _signal

        name = reason.message.removeprefix("killed by ").split()[0].rstrip(":")
        try:
            return None, int(_signal.Signals[name])
        except KeyError:
            return None, None
    if match := _EXIT_STATUS.search(reason.message):
        return int(match.group(1)), None
    return None, None


class RuntimeActor(SupervisedActor):
    """The base of TmuxRuntime, PtyRuntime and SdkRuntime: message dispatch and the activity notice."""

    kind = "none"

    def __init__(self, ctx: ChildContext, spec: RuntimeSpec) -> None:
        super().__init__(ctx)
        self.spec = spec

    # Subclasses implement these; each runs on the actor's thread.
    def send(self, text: str, enter: bool) -> None:
        raise NotImplementedError

    def send_keys(self, keys: tuple[str, ...]) -> None:
        raise NotImplementedError

    def capture(self, lines: int | None, ansi: bool) -> str:
        raise NotImplementedError

    def is_alive(self) -> bool:
        raise NotImplementedError

    def destroy(self) -> list[int]:
        """Kill everything; return the pids that survived (empty: clean)."""
        raise NotImplementedError

    def attach_info(self) -> AttachInfo:
        return AttachInfo(kind="none", detail=f"{self.kind} agents cannot be attached")

    def metrics(self) -> RuntimeMetrics:
        raise NotImplementedError

    def resize(self, cols: int, rows: int) -> None:
        raise NotImplementedError

    def statistics(self) -> RuntimeStats:
        raise NotImplementedError

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Send):
            return self.send(message.text, message.enter)
        if isinstance(message, SendKeys):
            return self.send_keys(message.keys)
        if isinstance(message, Capture):
            return self.capture(message.lines, message.ansi)
        if isinstance(message, IsAlive):
            return self.is_alive()
        if isinstance(message, GetRuntimeStats):
            return self.statistics()
        if isinstance(message, GetAttachInfo):
            return self.attach_info()
        if isinstance(message, GetMetrics):
            return self.metrics()
        if isinstance(message, Resize):
            return self.resize(message.cols, message.rows)
        if isinstance(message, Destroy):
            survivors = self.destroy()
            self.exit(ExitReason.normal())  # destroyed on purpose: not a failure, not restarted
            return survivors
        return self.on_runtime_message(message)

    def on_runtime_message(self, message: Any) -> Any:
        """Messages of a runtime's own (from its reader thread); unknown ones are logged by pykka."""
        return super().on_receive(message)

    def notify_adopted(self, quiet_since: float) -> None:
        """Tell the Instance the agent was adopted, quiet since `quiet_since` (monotonic)."""
        parent = self.ctx.parent
        if parent is not None:
            try:
                parent.tell(RuntimeAdopted(self.ctx.child_id, self.ctx.generation, quiet_since))
            except pykka.ActorDeadError:
                pass

    def notify_last_screen(self, screen: str, said: str | None = None) -> None:
        """Tell the Instance the agent's last screen and its last words (by default read off the screen),
        before this runtime ends: its exit report follows, in order, on the same inbox."""
        parent = self.ctx.parent
        if parent is None:
            return
        screen = bounded_screen(screen)
        said = last_words(screen) if said is None else said
        try:
            parent.tell(AgentLastScreen(self.ctx.child_id, self.ctx.generation, screen, said))
        except pykka.ActorDeadError:
            pass

    def notify_activity(self, nbytes: int, at: float) -> None:
        """Tell the Instance the agent wrote something (call at most once per flush interval)."""
        parent = self.ctx.parent
        if parent is not None:
            try:
                parent.tell(RuntimeActivity(self.ctx.child_id, self.ctx.generation, nbytes, at))
            except pykka.ActorDeadError:
                pass  # the Instance is stopping: nobody needs the notice
