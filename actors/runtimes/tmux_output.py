"""One reader thread for every agent on a tmux server: pipe-pane FIFOs in; logs, activity and deaths out.

    tap = server.pump.attach("corral_web_x", log_path, sink)   # a FIFO in corral's 0700 run directory
    pane = server.new_session(..., pipe_to=tap.fifo)           # tmux: pipe-pane -O 'exec cat >> FIFO'
    tap.bind(pane.pane_id, pane.pid)                            # now the agent's exit is watched too
    ...
    pending = tap.close()                                       # synchronous; the bytes not yet notified

What a sink is told, on the pump thread (it must be quick: a `tell`), for one tap, in this order:

- `Output(tap_id, nbytes)`: bytes appended to the tap's log since the previous notice; at most one per
  `coalesce_s` (20 ms), never later than `coalesce_s` after the bytes it counts.
- `PaneDied(tap_id, pane_id, status, signal)`: the agent exited. The pump watches the agent's pid through a
  pidfd (readable when the process exits, whoever its parent is), then asks tmux whether it has read the
  pane to its end (`pane_dead`), so output written before the exit is in the log before the death is
  reported; if tmux has not (a grandchild keeps the terminal open), the death is reported after
  `EXIT_DRAIN_S` anyway. The status comes from tmux (`pane_dead_status`/`pane_dead_signal`) or, when tmux
  has not reaped the agent yet, from the zombie's `/proc/<pid>/stat`.
  Why not tmux's `pane-died` hook: it fires only once tmux has reaped the agent, and a tmux linked with
  libutempter (Debian's, this VM's) waits for utempter's helper process while a pane closes; an agent whose
  SIGCHLD comes then stays a zombie until some other child of the server exits (seen with strace; 8-20 of
  40 quick exits in a row), and its hook does not fire until then.
- `PipeClosed(tap_id)`: EOF on the FIFO — the pane or the whole server went away, or somebody replaced the
  pipe. The runtime asks tmux which.

Nothing here runs on a timer: with no output and no deaths the thread sleeps in `select()` with no
timeout, and no tmux process is started (a death costs one `list-panes`). A FIFO is opened (non-blocking,
for reading) before tmux's `cat` opens it for writing, so `cat` never blocks and never creates a regular
file by mistake; its path is unique per tap, so a late EOF from a previous generation's `cat` cannot be
taken for this one's.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import selectors
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors.runtimes.logfile import RotatingLog
from actors.runtimes.tmux_server import TmuxError

if TYPE_CHECKING:
    from actors.runtimes.tmux_server import TmuxServer

__all__ = [
    "EXIT_DRAIN_S",
    "FLUSH_S",
    "Output",
    "OutputPump",
    "PaneDied",
    "PipeClosed",
    "Tap",
    "TapEvent",
    "release_fifo",
]

log = logging.getLogger(__name__)

FLUSH_S = 0.02
_READ_BYTES = 64 * 1024
_READS_PER_TURN = 16  # then the other FIFOs get their turn
EXIT_DRAIN_S = 1.0  # an exited agent whose pane stays open (a grandchild holds it) is over after this
_FIRST_CHECK_S = 0.005  # then doubling: tmux usually sees the end of the pane within a few ms of the exit
_WAKE = "wake"


class Output(msgspec.Struct, frozen=True):
    tap_id: int
    nbytes: int


class PaneDied(msgspec.Struct, frozen=True):
    tap_id: int
    pane_id: str
    status: int | None
    signal: int | None


class PipeClosed(msgspec.Struct, frozen=True):
    tap_id: int


TapEvent = Output | PaneDied | PipeClosed
Sink = Callable[[TapEvent], None]


class Tap:
    """One agent's output stream. `bind` and `close` may be called from any thread; the underscored fields
    belong to the pump thread."""

    def __init__(
        self, pump: OutputPump, tap_id: int, session: str, fifo: Path, fd: int, log: RotatingLog, sink: Sink
    ) -> None:
        self.pump = pump
        self.id = tap_id
        self.session = session
        self.fifo = fifo
        self.pane_id: str | None = None
        self.bytes_read = 0
        self.closed = False
        self._fd = fd
        self._log = log
        self._sink = sink
        self._pending = 0
        self._due: float | None = None
        self._pid = 0
        self._pidfd = -1
        self._exited_at: float | None = None  # the pidfd fired
        self._zombie_status: int | None = None  # waitpid-style status read from /proc while it was a zombie
        self._check_at: float | None = None
        self._check_delay = _FIRST_CHECK_S
        self._died = False  # PaneDied sent

    def __repr__(self) -> str:
        return f"Tap({self.session!r}, {self.pane_id or 'unbound'}, #{self.id})"

    def bind(self, pane_id: str, pid: int) -> None:
        """The pane now exists: watch its agent (`pid`) for its exit."""
        self.pane_id = pane_id
        self.pump._call(lambda: self.pump._watch(self, pid))

    def close(self, timeout_s: float = 5.0) -> int:
        """Stop reading (what is already in the FIFO is drained into the log first); close the log, remove
        the FIFO. Returns the bytes logged but not yet notified. Idempotent; safe from any thread."""
        result = self.pump._call(lambda: self.pump._remove(self), wait=True, timeout_s=timeout_s)
        return result if isinstance(result, int) else 0


def release_fifo(fifo: Path) -> None:
    """Remove `fifo` so that no writer stays blocked on it.

    A pane's writer (tmux's `sh -c 'exec cat >> FIFO'`) that opens the FIFO while no reader has it open blocks
    in open() for good, and unlinking the path does not wake it: a daemon killed between arming the pipe and
    the shell's open left such processes behind, one per agent (found by corral chaos). Opening the FIFO for
    reading, without blocking, lets that open complete; once our end closes, the writer meets a closed pipe
    (SIGPIPE) or its pane's end (EOF), and exits. A FIFO that a live reader still has open loses nothing:
    its writer and reader stay connected, our extra reader reads nothing.
    """
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # gone already, or not a FIFO we may open: nothing can be blocked on it by us
        fd = -1
    try:
        fifo.unlink(missing_ok=True)
    finally:
        if fd >= 0:
            os.close(fd)


class OutputPump:
    """The selector thread of one TmuxServer (created by `server.pump`)."""

    def __init__(self, server: TmuxServer, coalesce_s: float = FLUSH_S) -> None:
        self.server = server
        self.coalesce_s = coalesce_s
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._lock = threading.Lock()
        self._commands: collections.deque[tuple[Callable[[], Any], _Reply | None]] = collections.deque()
        self._taps: set[Tap] = set()
        self._release_stale()
        self._ids = 0
        self._bytes = 0
        self._stopping = False
        self._closed = False  # the thread has let go of everything: commands run inline
        self._thread = threading.Thread(target=self._run, name=f"tmux-output-{server.socket}", daemon=True)
        self._thread.start()

    # -- any thread ---------------------------------------------------------------------------------------

    def attach(self, session: str, log_path: str | Path, sink: Sink, *, max_bytes: int, backups: int) -> Tap:
        """A new tap for `session`: its FIFO created and open, its log open, registered with the thread."""
        fifo_dir = self._fifo_dir()
        for stale in fifo_dir.glob(f"{session}.*.fifo"):
            if not any(t.fifo == stale for t in list(self._taps)):
                release_fifo(stale)  # left by a corral that was killed
        fifo = fifo_dir / f"{session}.{secrets.token_hex(4)}.fifo"
        os.mkfifo(fifo, 0o600)
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            out = RotatingLog(Path(log_path), max_bytes, backups)
        except BaseException:
            fifo.unlink(missing_ok=True)
            raise
        with self._lock:
            self._ids += 1
            tap = Tap(self, self._ids, session, fifo, fd, out, sink)
        self._call(lambda: self._add(tap))
        return tap

    def totals(self) -> tuple[int, int]:
        """(taps, bytes read by all of them)."""
        return len(self._taps), self._bytes

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread; every tap is closed (logs flushed), no sink is told anything more."""
        self._stopping = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _release_stale(self) -> None:
        """Release the FIFOs a killed corral left (this pump has no tap yet): a pane's writer may be blocked
        on one for good. Those of another live corral on the same tmux server lose nothing (see
        `release_fifo`)."""
        try:
            stale = list(self.server.run_dir.glob("*.fifo"))
        except OSError:
            return
        for fifo in stale:
            release_fifo(fifo)

    def _fifo_dir(self) -> Path:
        path = self.server.run_dir
        for directory in (path.parent.parent, path.parent, path):
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:
                pass
        st = path.parent.parent.lstat()
        if st.st_uid != os.getuid() or not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o077:
            raise TmuxError(
                ["mkdir", str(path.parent.parent)],
                1,
                f"{path.parent.parent} must be a directory owned by uid {os.getuid()} with mode 0700",
            )
        return path

    def _call(self, fn: Callable[[], Any], *, wait: bool = False, timeout_s: float = 5.0) -> Any:
        """Run `fn` on the pump thread (inline when already there or when the thread has ended)."""
        reply = _Reply() if wait else None
        with self._lock:
            inline = self._closed or threading.current_thread() is self._thread
            if not inline:
                self._commands.append((fn, reply))
        if inline:
            return fn()
        self._wake()
        if reply is None:
            return None
        if not reply.done.wait(timeout_s):
            log.warning("tmux output thread did not answer within %.1f s", timeout_s)
            return None
        return reply.value

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # already awake: the pipe is full of wakeups
        except OSError:
            pass  # closed: the thread has ended

    # -- the pump thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, _ in self._sel.select(self._timeout()):
                    if key.data is _WAKE:
                        self._run_commands()
                    elif isinstance(key.data, _Exit):
                        self._on_exit(key.data.tap)
                    elif not key.data.closed:
                        self._read(key.data)
                self._flush_due()
                self._check_due()
        except Exception:
            log.exception("tmux output thread failed")
        finally:
            self._shutdown()

    def _timeout(self) -> float | None:
        deadlines = [t._due for t in self._taps if t._due is not None]
        deadlines += [t._check_at for t in self._taps if t._check_at is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _run_commands(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            with self._lock:
                if not self._commands:
                    return
                fn, reply = self._commands.popleft()
            try:
                value = fn()
            except Exception:
                log.exception("tmux output command failed")
                value = None
            if reply is not None:
                reply.value = value
                reply.done.set()

    def _add(self, tap: Tap) -> None:
        self._taps.add(tap)
        self._sel.register(tap._fd, selectors.EVENT_READ, tap)

    def _remove(self, tap: Tap) -> int:
        if tap.closed:
            return 0
        # Unlinked before our reader closes: a writer can then no longer open it with no reader left, which
        # would block it in open() for good (see `release_fifo`).
        tap.fifo.unlink(missing_ok=True)
        if tap._fd >= 0:
            self._read(tap, until_empty=True, report=False)
        if tap._fd >= 0:
            self._close_fd(tap)
        self._unwatch(tap)
        pending, tap._pending, tap._due = tap._pending, 0, None
        tap._log.close()
        tap.closed = True
        self._taps.discard(tap)
        return pending

    def _close_fd(self, tap: Tap) -> None:
        try:
            self._sel.unregister(tap._fd)
        except (KeyError, ValueError):
            pass
        os.close(tap._fd)
        tap._fd = -1

    def _read(self, tap: Tap, *, until_empty: bool = False, report: bool = True) -> None:
        turns = 0
        while until_empty or turns < _READS_PER_TURN:
            turns += 1
            try:
                data = os.read(tap._fd, _READ_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("reading %s: %s", tap.fifo, exc)
                data = b""
            if not data:
                # EOF: the writing `cat` is gone (pane or server gone, or the pipe replaced).
                self._close_fd(tap)
                if report:
                    self._flush(tap)
                    self._tell(tap, PipeClosed(tap.id))
                return
            try:
                tap._log.write(data)
            except OSError as exc:
                log.error("cannot write the log of %s: %s", tap.session, exc)
            n = len(data)
            tap.bytes_read += n
            tap._pending += n
            self._bytes += n
            if tap._due is None:
                tap._due = time.monotonic() + self.coalesce_s
            if n < _READ_BYTES and not until_empty:
                return

    def _flush_due(self) -> None:
        now = time.monotonic()
        for tap in list(self._taps):
            if tap._due is not None and tap._due <= now:
                self._flush(tap)

    def _flush(self, tap: Tap) -> None:
        if tap._pending:
            nbytes, tap._pending, tap._due = tap._pending, 0, None
            self._tell(tap, Output(tap.id, nbytes))
        tap._due = None

    @staticmethod
    def _tell(tap: Tap, event: TapEvent) -> None:
        try:
            tap._sink(event)
        except Exception:
            log.exception("tmux output sink of %s failed", tap.session)

    # -- deaths -------------------------------------------------------------------------------------------

    def _watch(self, tap: Tap, pid: int) -> None:
        if tap.closed:
            return
        tap._pid = pid
        try:
            tap._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._exited(tap)  # already gone (and reaped by tmux): tmux has its status
            return
        self._sel.register(tap._pidfd, selectors.EVENT_READ, _Exit(tap))

    def _unwatch(self, tap: Tap) -> None:
        if tap._pidfd >= 0:
            try:
                self._sel.unregister(tap._pidfd)
            except (KeyError, ValueError):
                pass
            os.close(tap._pidfd)
            tap._pidfd = -1
        tap._check_at = None

    def _on_exit(self, tap: Tap) -> None:
        tap._zombie_status = _zombie_status(tap._pid)  # before tmux reaps it and the record is gone
        self._unwatch(tap)
        self._exited(tap)

    def _exited(self, tap: Tap) -> None:
        tap._exited_at = time.monotonic()
        tap._check_delay = _FIRST_CHECK_S
        tap._check_at = tap._exited_at + _FIRST_CHECK_S

    def _check_due(self) -> None:
        now = time.monotonic()
        for tap in list(self._taps):
            if tap._check_at is not None and tap._check_at <= now:
                self._check_death(tap, now)

    def _check_death(self, tap: Tap, now: float) -> None:
        """Report the agent's exit once tmux has read its pane to the end (or EXIT_DRAIN_S has passed)."""
        tap._check_at = None
        if tap._died or tap.pane_id is None:
            return
        try:
            info = self.server.pane_info(tap.pane_id, tap.session)
        except TmuxError as exc:
            log.warning("cannot read pane %s after its agent exited: %s", tap.pane_id, exc)
            info = None
            if now - (tap._exited_at or now) < EXIT_DRAIN_S:
                tap._check_delay *= 2
                tap._check_at = now + tap._check_delay
                return
        if info is None:
            return  # the session is gone too: the FIFO's EOF reports that
        if not info.dead and now - (tap._exited_at or now) < EXIT_DRAIN_S:
            tap._check_delay *= 2
            tap._check_at = now + tap._check_delay
            return
        status, sig = info.dead_status, info.dead_signal
        if status is None and sig is None and tap._zombie_status is not None:
            raw = tap._zombie_status
            status = os.WEXITSTATUS(raw) if os.WIFEXITED(raw) else None
            sig = os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else None
        if tap._fd >= 0:
            self._read(tap, until_empty=True)
        self._flush(tap)
        tap._died = True
        self._tell(tap, PaneDied(tap.id, tap.pane_id, status, sig))

    def _shutdown(self) -> None:
        for tap in list(self._taps):
            tap._sink = _ignore
            try:
                self._remove(tap)
            except Exception:
                log.exception("closing %r", tap)
        with self._lock:
            self._closed = True
            commands = list(self._commands)
            self._commands.clear()
        for _, reply in commands:
            if reply is not None:
                reply.done.set()
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


class _Exit:
    """Selector data for a tap's pidfd."""

    __slots__ = ("tap",)

    def __init__(self, tap: Tap) -> None:
        self.tap = tap


def _zombie_status(pid: int) -> int | None:
    """A zombie's exit status, waitpid-style (/proc/<pid>/stat field 52); None once it has been reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] != "Z" or len(fields) < 50:
        return None
    return int(fields[49])


class _Reply:
    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None


def _ignore(event: TapEvent) -> None:
    return None
