"""PtyRuntime: an agent in a pseudo-terminal, a child of the daemon.

    ChildSpec.worker("runtime", PtyRuntime, spec, restart=Restart.TRANSIENT, backoff=BackoffSpec(min_s=0.5))

`started()` spawns the agent with ptyprocess (the child calls setsid(): pid == pgid == sid) at the spec's
window size, and hands the master fd to the process-wide reader (`reactor.py`: one selector thread for
every PTY). The reader appends the agent's output to a bounded ring (`spec.ring_bytes`, the newest bytes,
for capture) and to the rotating log, and tells this actor at most once per 20 ms how much arrived; the
actor passes that on to its Instance as `RuntimeActivity`. No byte of output goes through an actor's inbox.

When the agent exits, the reader tells the actor once its last output is in: the actor hands the agent's last
screen (played from the ring) to its Instance, whose exit reason quotes what the agent said last; status 0
ends the runtime `normal` (a transient child is not restarted), anything else ends it with the cause
("killed by SIGKILL", "exit status 3") and the Instance restarts it with backoff.

Killing an agent (Destroy, an orderly stop, a kill hook when this actor hangs) means its whole process tree:
SIGHUP to the group (what a closing terminal sends), then `procinfo.kill_tree` — SIGTERM, a grace period,
SIGKILL — over the agent's tree and session, and over every process carrying this runtime's token in its
environment (`CORRAL_RUNTIME_TOKEN`). The token is what finds a grandchild that called setsid() and was
orphaned when the agent died: it has left the session and lost its parent chain, but not its environment.
The agent is reaped only after the sweep, so its pid (and session id) cannot have been reused by then.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import signal
import termios
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pykka
from ptyprocess import PtyProcess

from actors.runtimes.base import (
    LAST_SCREEN_LINES,
    AttachInfo,
    RuntimeActor,
    RuntimeMetrics,
    RuntimeSpec,
    RuntimeStats,
    agent_exit_reason,
)
from actors.runtimes.logfile import RotatingLog
from actors.runtimes.procinfo import TOKEN_VAR, CpuSampler, kill_tree, read_stat, tagged_sessions
from actors.runtimes.reactor import Channel, PtyReactor, default_reactor
from actors.runtimes.ring import RingBuffer, screen_lines, stream_lines
from actors.supervision.context import ChildContext
from protocols.errors import ConflictError, UsageError
from protocols.messages import ExitReason

__all__ = ["KEYS", "LINE_MAX", "PASTE_OVER_CHARS", "PtyRuntime", "encode_text", "key_bytes"]

log = logging.getLogger(__name__)

PASTE_OVER_CHARS = 200  # longer text is pasted rather than typed (as the tmux runtime does)
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
LINE_MAX = 4095  # what Linux's N_TTY holds of pending input in canonical mode; more can be silently dropped
CLEAR_LINE = b"\x15"  # C-u: drop a half-typed line before sending
_PASTE_MODE = b"\x1b[?2004"  # + h (on) / l (off): the agent asks for bracketed paste, or stops
ENTER = b"\r"
_UNINHERITED = ("TMUX", "TMUX_PANE", "COLUMNS", "LINES", TOKEN_VAR)


# -- text and keys → bytes (pure) ---------------------------------------------------------------------------


def encode_text(text: str, *, bracketed: bool = True) -> bytes:
    """The bytes that put `text` on an agent's input line, as a terminal would send it typed or pasted.

    Short single-line text is typed. Longer or multi-line text is pasted: newlines become carriage returns
    (what a terminal sends for a pasted newline, and what tmux's paste-buffer does), and when the agent has
    turned bracketed paste on (`bracketed`) the whole is wrapped in `ESC[200~ … ESC[201~`, so a TUI takes it
    as one block whose newlines do not submit it. As in xterm, an agent that did not ask for bracketed paste
    gets the bare text (the markers would be junk on its input line). Markers inside the text are removed:
    they would end the paste early.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" not in text and len(text) <= PASTE_OVER_CHARS:
        return text.encode("utf-8", errors="replace")
    body = text.replace(PASTE_START, "").replace(PASTE_END, "").replace("\n", "\r")
    if bracketed:
        body = f"{PASTE_START}{body}{PASTE_END}"
    return body.encode("utf-8", errors="replace")


# tmux key names (case-insensitive, as tmux matches them) → what an xterm sends. Cursor and editing keys are
# in their CSI form; with modifiers they take xterm's `;m` parameter (C-Up → ESC [1;5A).
KEYS: dict[str, bytes] = {
    "enter": b"\r",
    "escape": b"\x1b",
    "tab": b"\t",
    "btab": b"\x1b[Z",
    "bspace": b"\x7f",
    "space": b" ",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "home": b"\x1b[H",
    "end": b"\x1b[F",
    "ic": b"\x1b[2~",
    "insert": b"\x1b[2~",
    "dc": b"\x1b[3~",
    "delete": b"\x1b[3~",
    "ppage": b"\x1b[5~",
    "pageup": b"\x1b[5~",
    "pgup": b"\x1b[5~",
    "npage": b"\x1b[6~",
    "pagedown": b"\x1b[6~",
    "pgdn": b"\x1b[6~",
    "f1": b"\x1bOP",
    "f2": b"\x1bOQ",
    "f3": b"\x1bOR",
    "f4": b"\x1bOS",
    "f5": b"\x1b[15~",
    "f6": b"\x1b[17~",
    "f7": b"\x1b[18~",
    "f8": b"\x1b[19~",
    "f9": b"\x1b[20~",
    "f10": b"\x1b[21~",
    "f11": b"\x1b[23~",
    "f12": b"\x1b[24~",
}
_CTRL_PUNCT = {"@": 0, " ": 0, "[": 0x1B, "\\": 0x1C, "]": 0x1D, "^": 0x1E, "_": 0x1F, "?": 0x7F}
_MODIFIERS = re.compile(r"((?:[CMS]-)+)(.+)", re.IGNORECASE)
_CSI_KEY = re.compile(rb"\x1b\[(\d*)([A-Z~])")


def key_bytes(name: str) -> bytes:
    """What pressing the tmux-named key `name` sends: "Enter", "C-c", "M-x", "C-Up", "^U", "y", "F5".

    As with tmux's send-keys, a string that names no key is sent as the characters it holds.
    """
    if (plain := KEYS.get(name.lower())) is not None:
        return plain
    if len(name) == 2 and name[0] == "^":
        name = f"C-{name[1]}"
    match = _MODIFIERS.fullmatch(name)
    if match is None or (len(match.group(2)) > 1 and match.group(2).lower() not in KEYS):
        return name.encode()
    mods = match.group(1).upper()
    ctrl, meta, shift = "C-" in mods, "M-" in mods, "S-" in mods
    base = " " if match.group(2).lower() == "space" else match.group(2)
    if len(base) == 1:
        char = base.upper() if shift else base
        if ctrl:
            if char.isascii() and char.isalpha():
                out = bytes([ord(char.lower()) & 0x1F])
            elif char in _CTRL_PUNCT:
                out = bytes([_CTRL_PUNCT[char]])
            else:
                out = char.encode()
        else:
            out = char.encode()
        return b"\x1b" + out if meta else out
    plain = KEYS[base.lower()]
    if shift and plain == b"\t":
        plain, shift = KEYS["btab"], False
    csi = _CSI_KEY.fullmatch(plain)
    param = 1 + shift + 2 * meta + 4 * ctrl
    if csi is not None and param > 1:
        number = csi.group(1) or b"1"
        return b"\x1b[" + number + b";" + str(param).encode() + csi.group(2)
    return b"\x1b" + plain if meta else plain


# -- the actor ----------------------------------------------------------------------------------------------


class _Output(msgspec.Struct, frozen=True):
    """Reader → runtime: the agent wrote `nbytes` (already in the ring and the log)."""

    nbytes: int
    at: float


class _AgentExited(msgspec.Struct, frozen=True):
    """Reader → runtime: the agent process exited and its last output is in."""


class PtyRuntime(RuntimeActor):
    """An agent in a PTY owned by this actor; see the module docstring. Handlers run on the actor's thread;
    `_on_data`, `_on_activity` and `_on_exit` run on the reader's."""

    kind = "pty"
    stop_grace_s: float = 2.0  # SIGHUP + SIGTERM, then this long, then SIGKILL

    def __init__(
        self,
        ctx: ChildContext,
        spec: RuntimeSpec,
        *,
        reactor: PtyReactor | None = None,
        stop_grace_s: float | None = None,
    ) -> None:
        super().__init__(ctx, spec)
        if spec.ring_bytes < 1:
            raise UsageError(f"runtime {spec.name}: ring_bytes must be at least 1, got {spec.ring_bytes}")
        if stop_grace_s is not None:
            self.stop_grace_s = stop_grace_s
        self._reactor = reactor
        self.ring = RingBuffer(spec.ring_bytes)
        self._log: RotatingLog | None = None
        self._log_failed = False
        self._proc: PtyProcess | None = None
        self._pid: int | None = None
        self._channel: Channel | None = None
        self.token = ""  # CORRAL_RUNTIME_TOKEN in the agent's environment: how the sweep knows its processes
        self._cols, self._rows = spec.cols, spec.rows
        self._bytes_read = 0
        self._last_output_at: float | None = None
        self._spawned_at = 0.0
        self._sampler = CpuSampler()
        self._bracketed_paste = False  # the agent turned bracketed paste on (ESC[?2004h)
        self._edge = b""  # the end of the previous chunk of output
        self._ending = False  # Destroy or stop under way: the agent's exit is ours, not its failure
        self._reaped = False
        self._exit_status: tuple[int | None, int | None] | None = None
        self._kill_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def started(self) -> None:
        spec = self.spec
        self._log = RotatingLog(Path(spec.log_path), spec.log_max_bytes, spec.log_backups)
        self.token = f"{spec.name}.{os.getpid()}.{self.ctx.generation}.{secrets.token_hex(4)}"
        env = self._agent_env()
        argv = list(spec.argv)
        found = shutil.which(argv[0], path=env.get("PATH"))
        if found is None:
            raise UsageError(f"runtime {spec.name}: command not found: {argv[0]!r} (PATH={env.get('PATH')})")
        argv[0] = found
        if not os.path.isdir(spec.cwd):
            raise UsageError(f"runtime {spec.name}: working directory {spec.cwd!r} does not exist")
        self._proc = PtyProcess.spawn(argv, cwd=spec.cwd, env=env, dimensions=(spec.rows, spec.cols))
        self._pid = self._proc.pid
        self._spawned_at = time.monotonic()
        self.ctx.handle.add_kill_hook(self._kill_hook)
        self._reactor = self._reactor or default_reactor()
        self._channel = self._reactor.register(
            self._proc.fd,
            pid=self._pid,
            on_data=self._on_data,
            on_activity=self._on_activity,
            on_exit=self._on_exit,
        )

    def stopping(self) -> None:
        self._ending = True
        survivors = self._end_agent(self.stop_grace_s)
        if survivors:
            log.warning("runtime %s: processes survived SIGKILL: %s", self.spec.name, survivors)
        released = self._channel is None or self._channel.close()
        if self._proc is not None and not self._proc.closed:
            if released:
                self._proc.fileobj.close()  # the master fd: the agent's side sees a hangup, if still there
            else:
                log.error("runtime %s: the PTY reader did not let go of fd %d", self.spec.name, self._proc.fd)
            self._proc.closed = True  # ptyprocess's own close() would sleep and signal: we did all of that
        if self._log is not None:
            self._log.close()

    def _agent_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _UNINHERITED}
        env["TERM"] = "xterm-256color"
        env.update(self.spec.env)
        env.update(COLUMNS=str(self.spec.cols), LINES=str(self.spec.rows))
        env[TOKEN_VAR] = self.token
        return env

    # -- the interface ------------------------------------------------------------------------------------

    def send(self, text: str, enter: bool) -> None:
        """C-u, the text (typed, or pasted when long or multi-line), then Enter after `spec.settle_s`.

        Returns once queued: the reader writes it as fast as the agent takes it, and the settle delay starts
        when the text has been written. Refused (ConflictError) when the agent's terminal is still in line
        mode and the text is longer than the kernel holds (LINE_MAX): it would arrive cut. Agent UIs run in
        raw mode, so this means "not up yet". (Even shorter bursts of long lines can lose a line in line
        mode while the terminal echoes: a kernel N_TTY effect, measured in docs/runtimes.md.)
        """
        channel = self._live_channel()
        items: list[bytes | float] = []
        if text:
            payload = encode_text(text, bracketed=self._bracketed_paste)
            self._check_line_mode(payload)
            items += [CLEAR_LINE, payload]
            if enter:
                items += [self.spec.settle_s, ENTER]
        elif enter:
            items.append(ENTER)
        channel.write(*items)

    def _check_line_mode(self, payload: bytes) -> None:
        if len(payload) <= LINE_MAX or self._proc is None:
            return
        try:
            canonical = bool(termios.tcgetattr(self._proc.fd)[3] & termios.ICANON)  # the agent's side
        except termios.error:
            return
        if canonical:
            raise ConflictError(
                f"runtime {self.spec.name}: the agent's terminal is in line mode, which holds {LINE_MAX} "
                f"bytes of input; this text is {len(payload)} bytes and would arrive cut. Send it once the "
                "agent's UI is up (raw mode), or in pieces"
            )

    def send_keys(self, keys: tuple[str, ...]) -> None:
        data = b"".join(key_bytes(k) for k in keys)
        self._live_channel().write(data)

    def capture(self, lines: int | None, ansi: bool) -> str:
        """The last `lines` lines of the agent's screen and scrollback (None: all the ring holds).

        Without `ansi`, the ring's tail is played through a small terminal model (`ring.screen_lines`), so a
        dialog the agent erased, or a line it redrew, shows as the agent left it. With `ansi`, the lines as
        written, escapes kept (`ring.stream_lines`): a log view with colours, not a screen.
        """
        if lines is not None and lines < 0:
            raise UsageError(f"capture: lines must be >= 0 or None, got {lines}")
        if lines == 0:
            return ""
        want = None if lines is None else max(64 * 1024, lines * 512)
        while True:
            raw, whole = self.ring.snapshot(want)
            if ansi:
                out = stream_lines(raw, complete=whole, ansi=True)
            else:
                out = screen_lines(raw, cols=self._cols, rows=self._rows, complete=whole)
            if want is None or whole or len(raw) >= len(self.ring) or len(out) > lines:
                break
            want *= 4  # erased or wrapped output: more bytes for the lines asked for
        return "\n".join(out if lines is None else out[-lines:])

    def is_alive(self) -> bool:
        if self._pid is None or self._reaped:
            return False
        st = read_stat(self._pid)
        return st is not None and st.state != "Z"

    def destroy(self) -> list[int]:
        self._ending = True
        return self._end_agent(self.stop_grace_s)

    def attach_info(self) -> AttachInfo:
        return AttachInfo(
            kind="pty",
            detail=f"proxied by the corral daemon: pid {self._pid}, {self._cols}x{self._rows}",
        )

    def metrics(self) -> RuntimeMetrics:
        return self._sampler.sample(self._pid if self.is_alive() else None, self._spawned_at)

    def resize(self, cols: int, rows: int) -> None:
        if not (0 < cols <= 0xFFFF and 0 < rows <= 0xFFFF):
            raise UsageError(f"resize: {cols}x{rows} is not a window size")
        if self._proc is None or self._reaped or self._proc.closed:
            raise ConflictError(f"runtime {self.spec.name}: the agent is not running")
        self._proc.setwinsize(rows, cols)  # the kernel sends SIGWINCH to the agent's foreground group
        self._cols, self._rows = cols, rows

    def statistics(self) -> RuntimeStats:
        return RuntimeStats(
            name=self.spec.name,
            kind=self.kind,
            alive=self.is_alive(),
            pid=self._pid,
            bytes_read=self._bytes_read,
            last_output_at=self._last_output_at,
            adopted=False,
            started_at=self._spawned_at,
        )

    def on_runtime_message(self, message: Any) -> Any:
        if isinstance(message, _Output):
            self.notify_activity(message.nbytes, message.at)
            return None
        if isinstance(message, _AgentExited):
            if not self._ending:
                reason = self._exit_reason_now()
                killed = self._exit_status is not None and self._exit_status[1] is not None
                self.notify_last_screen(self.capture(LAST_SCREEN_LINES, False), "" if killed else None)
                self.exit(reason)
            return None
        return super().on_runtime_message(message)

    # -- the reader's callbacks (reader thread) -----------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self.ring.append(data)
        self._bytes_read += len(data)
        # Whether the agent wants bracketed paste: the last ESC[?2004h/l wins (C-speed scans, one per chunk;
        # the previous chunk's end covers a sequence cut in two).
        edge = self._edge + data[:7]
        for chunk in (edge, data):
            at = chunk.rfind(_PASTE_MODE)
            if at >= 0 and at + 7 < len(chunk) and chunk[at + 7] in b"hl":
                self._bracketed_paste = chunk[at + 7] == ord("h")
        self._edge = data[-7:]
        if self._log is not None and not self._log_failed:
            try:
                self._log.write(data)
            except (OSError, ValueError) as exc:
                self._log_failed = True  # the ring still has the output; say so once
                log.warning(
                    "runtime %s: cannot write its log %s: %s", self.spec.name, self.spec.log_path, exc
                )

    def _on_activity(self, nbytes: int) -> None:
        at = self.ctx.env.clock.monotonic()
        self._last_output_at = at
        self._tell_self(_Output(nbytes, at))

    def _on_exit(self) -> None:
        self._tell_self(_AgentExited())

    def _tell_self(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass  # stopping already: stopping() reaps the agent itself

    # -- ending the agent ---------------------------------------------------------------------------------

    def _live_channel(self) -> Channel:
        if self._channel is None or self._ending or not self.is_alive():
            raise ConflictError(f"runtime {self.spec.name}: the agent is not running")
        return self._channel

    def _exit_reason_now(self) -> ExitReason:
        """Why the agent ended, read without reaping it (it stays a zombie until the sweep is done)."""
        assert self._pid is not None
        try:
            info = os.waitid(os.P_PID, self._pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return ExitReason.error("AgentExited", "the agent was reaped elsewhere: exit status unknown")
        if info is None:  # only without a pidfd, where EOF stands for the exit
            return ExitReason.error("AgentExited", "the agent closed its terminal")
        if info.si_code == os.CLD_EXITED:
            self._exit_status = (info.si_status, None)
        else:
            self._exit_status = (None, info.si_status)
        return agent_exit_reason(*self._exit_status)

    def _end_agent(self, grace_s: float) -> list[int]:
        """Kill the agent's tree, session and tagged processes; reap it; return the pids still alive."""
        pid = self._pid
        if pid is None:
            return []
        with self._kill_lock:
            if self._reaped:  # its pid may belong to somebody else now: only the token still identifies
                sids = self._tagged_sids()
                return kill_tree(None, sids=sids, grace_s=grace_s) if sids else []
            st = read_stat(pid)
            if st is not None and st.state != "Z":
                try:
                    os.killpg(pid, signal.SIGHUP)
                except (ProcessLookupError, PermissionError):
                    pass
            survivors = kill_tree(pid, sids=self._tagged_sids(), grace_s=grace_s)
            self._reap()
            return survivors

    def _reap(self, timeout_s: float = 2.0) -> None:
        assert self._pid is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                done, status = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                break  # reaped elsewhere
            if done:
                if self._exit_status is None:
                    code = os.waitstatus_to_exitcode(status)
                    self._exit_status = (code, None) if code >= 0 else (None, -code)
                break
            if time.monotonic() > deadline:
                log.error("runtime %s: agent %d did not die after SIGKILL", self.spec.name, self._pid)
                return
            time.sleep(0.005)
        self._reaped = True

    def _tagged_sids(self) -> list[int]:
        """Session ids of the processes that carry this runtime's token (never the daemon's own session)."""
        if not self.token:
            return []
        mine = os.getsid(0)
        return sorted({sid for sid in tagged_sessions(self.token) if sid != mine})

    def _kill_hook(self) -> None:
        """Run by the supervisor when this actor does not stop in time: SIGKILL everything, no grace.

        It does not reap (the hung thread may be doing so); `_reaped` guards against signalling a reused pid.
        """
        pid = None if self._reaped else self._pid
        sids = self._tagged_sids()
        if pid is not None or sids:
            kill_tree(pid, sids=sids, grace_s=0)
