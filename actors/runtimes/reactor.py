"""One selector thread for every PTY in the process: non-blocking reads and writes, output coalesced.

    reactor = default_reactor()                     # started on first use: one daemon thread
    channel = reactor.register(master_fd, pid=pid, on_data=..., on_activity=..., on_exit=...)
    channel.write(b"\\x15", b"some text", 0.3, b"\\r")  # bytes, and pauses (seconds) between them
    channel.close()                                 # synchronous: the reactor never touches the fd again

Why one thread: a pykka actor cannot `select()` on an fd while it waits on its inbox, and a reader thread per
agent costs a thread and a GIL handoff per 4 KiB read. One thread with an epoll selector over every master
fd read 10 flooding PTYs at 94 MB/s (notes/libraries.md §5.2). It does the minimum per byte — `os.read`
into a bytearray — and hands the owner one chunk per `flush_bytes` or per `flush_s`, whichever comes first.

What an owner is promised, per channel; every callback runs on the reactor thread, must be quick, and is
called in this order:

- `on_data(chunk)`: every byte read, in order, in chunks of at most about `flush_bytes`; pending bytes are
  never older than `flush_s`. The reactor holds at most that much per channel, so memory stays bounded
  however fast the agent writes (a reader slower than the agent makes the agent block on its own write).
- `on_activity(nbytes)`: the bytes delivered since the previous call; at most once per `flush_s`, and never
  later than `flush_s` after the data it counts — the coalesced notice an actor can afford to receive.
- `on_exit()`: once, after the last `on_data`/`on_activity`. With `pid` given, the process is watched
  through a pidfd, and `on_exit` comes when it has exited *and* its output is drained: a master read
  raises EIO (Linux's EOF) once the agent's side is closed, and bytes written just before the exit arrive
  before it. An agent that closes its terminal but keeps running is not over; an exited agent whose
  terminal stays open (a grandchild holds it) is over after `exit_drain_s`. Without a pidfd, EOF is exit.

Writes are queued per channel and drained when the fd is writable, so a prompt larger than the PTY's input
buffer is written in pieces without blocking anybody, and an agent that stops reading stalls only its own
queue. A pause in the queue starts when the bytes before it have been written: "paste, wait 0.3 s, press
Enter" means 0.3 s after the paste actually reached the terminal. Pauses are real time: they are about how
fast the agent's terminal UI settles, not a supervision decision, so they do not read the injected clock.
"""

from __future__ import annotations

import collections
import errno
import logging
import math
import os
import selectors
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Channel", "PtyReactor", "default_reactor"]

log = logging.getLogger(__name__)

FLUSH_S = 0.02
FLUSH_BYTES = 64 * 1024
EXIT_DRAIN_S = 1.0
_READ_BYTES = 64 * 1024
_READS_PER_TURN = 32  # then the other fds get their turn, however fast this one fills
_PTY, _PID = "pty", "pid"

OnData = Callable[[bytes], None]
OnActivity = Callable[[int], None]
OnExit = Callable[[], None]


class Channel:
    """One registered PTY master. `write` and `close` may be called from any thread.

    The underscored fields belong to the reactor thread.
    """

    def __init__(
        self,
        reactor: PtyReactor,
        fd: int,
        pid: int | None,
        on_data: OnData,
        on_activity: OnActivity,
        on_exit: OnExit,
    ) -> None:
        self.fd = fd
        self.pid = pid
        self.closed = False  # set by the reactor once it let go of the fd
        self.bytes_written = 0
        self.writes_dropped = 0  # bytes queued after the agent's side closed: nowhere to go
        self._reactor = reactor
        self._on_data, self._on_activity, self._on_exit = on_data, on_activity, on_exit
        self._pending = bytearray()
        self._pending_since: float | None = None
        self._unnoticed = 0
        self._last_notice = -math.inf
        self._writes: collections.deque[bytes | float] = collections.deque()
        self._write_off = 0
        self._write_at: float | None = None  # the pause at the head of the queue ends then
        self._writing = False  # waiting for the fd to become writable
        self._events = 0  # what the fd is registered for
        self._pidfd: int | None = None
        self._pidfd_registered = False
        self._exit_by_pid = False  # the exit is known from the pidfd (else EOF stands for it)
        self._eof = False
        self._exited = False
        self._exit_deadline: float | None = None
        self._done = False  # on_exit was called

    def write(self, *items: bytes | float) -> None:
        """Queue bytes for the agent, with pauses (seconds, as float) between them; returns at once.

        Items are written in order; nothing is lost to a full PTY (the rest waits for room), and bytes queued
        after the agent's side closed are dropped and counted in `writes_dropped`.
        """
        queued: list[bytes | float] = []
        for item in items:
            if isinstance(item, bytes | bytearray | memoryview):
                if len(item):
                    queued.append(bytes(item))
            elif isinstance(item, int | float) and not isinstance(item, bool) and item >= 0:
                queued.append(float(item))
            else:
                raise TypeError(f"a PTY write is bytes or a pause in seconds >= 0, got {item!r}")
        if queued:
            self._reactor._post(self._reactor._cmd_write, self, queued)

    def close(self, timeout: float = 5.0) -> bool:
        """Unregister: deliver what is pending to `on_data`, then never touch the fd again.

        Blocks until the reactor has let go (False if it did not within `timeout`: then do not close the fd,
        the reactor may still read it). Never calls `on_exit`. The caller owns, and closes, the fd.
        """
        if self.closed:
            return True
        done = threading.Event()
        self._reactor._post(self._reactor._cmd_close, self, done)
        return done.wait(timeout)

    def __repr__(self) -> str:
        return f"<Channel fd={self.fd} pid={self.pid}{' closed' if self.closed else ''}>"


class PtyReactor:
    """A daemon thread running an epoll selector over PTY master fds; see the module docstring."""

    def __init__(
        self,
        *,
        flush_s: float = FLUSH_S,
        flush_bytes: int = FLUSH_BYTES,
        exit_drain_s: float = EXIT_DRAIN_S,
        name: str = "corral-pty-reactor",
    ) -> None:
        self.flush_s = flush_s
        self.flush_bytes = flush_bytes
        self.exit_drain_s = exit_drain_s
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._commands: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self._channels: set[Channel] = set()
        self._dirty: set[Channel] = set()  # output pending, or not yet noticed
        self._timed: set[Channel] = set()  # a write pause or an exit drain is running
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- any thread ---------------------------------------------------------------------------------------

    def register(
        self,
        fd: int,
        *,
        on_data: OnData,
        on_activity: OnActivity,
        on_exit: OnExit,
        pid: int | None = None,
    ) -> Channel:
        """Watch `fd` (made non-blocking) and, given `pid`, the process's exit; see the module docstring."""
        os.set_blocking(fd, False)
        channel = Channel(self, fd, pid, on_data, on_activity, on_exit)
        if pid is not None:
            try:
                channel._pidfd = os.pidfd_open(pid)
            except OSError as exc:  # no pidfd on this kernel: EOF will stand for the exit
                log.debug("pidfd_open(%d) failed: %s; EOF stands for exit", pid, exc)
        self._post(self._cmd_register, channel)
        return channel

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def channels(self) -> int:
        return len(self._channels)

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (tests; the process-wide reactor lives as long as the process)."""
        self._stopping = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.current_thread() is self._thread:
            fn(*args)
            return
        self._commands.append((fn, args))
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the reactor has wakeups enough already

    # -- the reactor thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                try:
                    self._turn()
                except Exception:  # a bug here must not silence every agent: log it and go on
                    log.exception("PTY reactor: a turn failed")
                    time.sleep(0.01)
        finally:
            self._sel.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _turn(self) -> None:
        try:
            events = self._sel.select(self._timeout())
        except InterruptedError:
            return
        now = time.monotonic()
        for key, mask in events:
            if key.data is None:
                self._run_commands()
                continue
            channel, what = key.data
            if channel.closed:
                continue  # closed by a command earlier in this batch
            try:
                if what is _PID:
                    self._on_pidfd(channel, now)
                else:
                    if mask & selectors.EVENT_READ:
                        self._read(channel, now)
                    if mask & selectors.EVENT_WRITE and channel._events:
                        self._pump(channel, now)
            except Exception:
                log.exception("PTY reactor: %r failed", channel)
        if self._dirty or self._timed:
            self._tick(time.monotonic())

    def _run_commands(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while self._commands:
            fn, args = self._commands.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("PTY reactor: %s%r failed", fn.__name__, args)

    def _timeout(self) -> float | None:
        if not self._dirty and not self._timed:
            return None
        due = math.inf
        for ch in self._dirty:
            if ch._pending_since is not None:
                due = min(due, ch._pending_since + self.flush_s)
            if ch._unnoticed:
                due = min(due, ch._last_notice + self.flush_s)
        for ch in self._timed:
            if ch._write_at is not None:
                due = min(due, ch._write_at)
            if ch._exit_deadline is not None:
                due = min(due, ch._exit_deadline)
        return None if due == math.inf else max(0.0, due - time.monotonic())

    def _tick(self, now: float) -> None:
        for ch in list(self._dirty):
            pending_due = ch._pending_since is not None and now - ch._pending_since >= self.flush_s
            if pending_due or (ch._unnoticed and now - ch._last_notice >= self.flush_s):
                self._flush(ch, now)
        for ch in list(self._timed):
            if ch._write_at is not None and now >= ch._write_at:
                self._pump(ch, now)
            if ch._exit_deadline is not None and now >= ch._exit_deadline:
                self._finish(ch, now)
            if ch._write_at is None and ch._exit_deadline is None:
                self._timed.discard(ch)

    # reading

    def _read(self, ch: Channel, now: float) -> None:
        fd, pending = ch.fd, ch._pending
        for _ in range(_READS_PER_TURN):
            try:
                chunk = os.read(fd, _READ_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:  # EIO: the agent's side of the PTY is closed (Linux's EOF)
                if exc.errno != errno.EIO:
                    log.warning("PTY reactor: reading fd %d: %s; taken as EOF", fd, exc)
                chunk = b""
            if not chunk:
                self._on_eof(ch, now)
                return
            if ch._pending_since is None:
                ch._pending_since = now
                self._dirty.add(ch)
            pending += chunk
            if len(pending) >= self.flush_bytes:
                self._flush(ch, now)

    def _flush(self, ch: Channel, now: float, *, final: bool = False) -> None:
        if ch._pending:
            data = bytes(ch._pending)
            ch._pending.clear()
            ch._unnoticed += len(data)
            self._call(ch._on_data, data)
        ch._pending_since = None
        if ch._unnoticed and (final or now - ch._last_notice >= self.flush_s):
            nbytes, ch._unnoticed, ch._last_notice = ch._unnoticed, 0, now
            self._call(ch._on_activity, nbytes)
        if ch._unnoticed:
            self._dirty.add(ch)
        else:
            self._dirty.discard(ch)

    def _on_eof(self, ch: Channel, now: float) -> None:
        ch._eof = True
        self._flush(ch, now, final=True)
        self._drop_writes(ch)
        self._set_events(ch)
        if ch._exited or not ch._exit_by_pid:
            self._finish(ch, now)

    def _on_pidfd(self, ch: Channel, now: float) -> None:
        self._unwatch_pid(ch)
        ch._exited = True
        if ch._eof:
            self._finish(ch, now)
        else:  # the agent is gone; read what it wrote until EIO, or give up after the drain time
            ch._exit_deadline = now + self.exit_drain_s
            self._timed.add(ch)

    def _finish(self, ch: Channel, now: float) -> None:
        if ch._done:
            return
        ch._done = True
        ch._exit_deadline = None
        self._flush(ch, now, final=True)
        self._drop_writes(ch)
        ch._eof = True
        self._set_events(ch)
        self._unwatch_pid(ch)
        self._timed.discard(ch)
        self._call(ch._on_exit)

    # writing

    def _pump(self, ch: Channel, now: float) -> None:
        queue = ch._writes
        while queue:
            head = queue[0]
            if isinstance(head, float):
                if ch._write_at is None:
                    now = time.monotonic()  # the pause starts once the bytes before it are written
                    ch._write_at = now + head
                if now < ch._write_at:
                    self._timed.add(ch)
                    ch._writing = False
                    self._set_events(ch)
                    return
                queue.popleft()
                ch._write_at = None
                continue
            try:
                n = os.write(ch.fd, memoryview(head)[ch._write_off :])
            except BlockingIOError:
                ch._writing = True
                self._set_events(ch)
                return
            except OSError as exc:  # EIO: nobody on the other side any more
                log.debug("PTY reactor: writing fd %d: %s; dropping the queue", ch.fd, exc)
                self._drop_writes(ch)
                return
            ch.bytes_written += n
            ch._write_off += n
            if ch._write_off >= len(head):
                queue.popleft()
                ch._write_off = 0
        ch._writing = False
        self._set_events(ch)

    def _drop_writes(self, ch: Channel) -> None:
        dropped = sum(len(w) for w in ch._writes if isinstance(w, bytes)) - ch._write_off
        ch.writes_dropped += max(0, dropped)
        ch._writes.clear()
        ch._write_off, ch._write_at, ch._writing = 0, None, False
        self._set_events(ch)

    # commands (posted from other threads, run here)

    def _cmd_register(self, ch: Channel) -> None:
        self._channels.add(ch)
        try:
            self._set_events(ch)
            if ch._pidfd is not None:
                self._sel.register(ch._pidfd, selectors.EVENT_READ, (ch, _PID))
                ch._pidfd_registered = ch._exit_by_pid = True
        except (OSError, ValueError) as exc:
            log.error("PTY reactor: cannot watch fd %d: %s", ch.fd, exc)
            self._finish(ch, time.monotonic())

    def _cmd_write(self, ch: Channel, items: list[bytes | float]) -> None:
        if ch.closed or ch._eof:
            ch.writes_dropped += sum(len(w) for w in items if isinstance(w, bytes))
            return
        idle = not ch._writes
        ch._writes.extend(items)
        if idle:
            self._pump(ch, time.monotonic())

    def _cmd_close(self, ch: Channel, done: threading.Event) -> None:
        try:
            if not ch.closed:
                if not ch._done:
                    self._flush(ch, time.monotonic(), final=True)
                ch._writes.clear()
                ch._writing = False
                self._set_events(ch, 0)
                self._unwatch_pid(ch)
                self._channels.discard(ch)
                self._dirty.discard(ch)
                self._timed.discard(ch)
                ch.closed = True
        finally:
            done.set()

    # selector bookkeeping

    def _set_events(self, ch: Channel, events: int | None = None) -> int:
        if events is None:
            events = 0
            if not ch._eof and not ch._done:
                events |= selectors.EVENT_READ
            if ch._writing:
                events |= selectors.EVENT_WRITE
        if events != ch._events:
            if ch._events == 0:
                self._sel.register(ch.fd, events, (ch, _PTY))
            elif events == 0:
                self._sel.unregister(ch.fd)
            else:
                self._sel.modify(ch.fd, events, (ch, _PTY))
            ch._events = events
        return events

    def _unwatch_pid(self, ch: Channel) -> None:
        if ch._pidfd is None:
            return
        if ch._pidfd_registered:
            self._sel.unregister(ch._pidfd)
            ch._pidfd_registered = False
        os.close(ch._pidfd)
        ch._pidfd = None

    @staticmethod
    def _call(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("PTY reactor: callback %r failed", fn)


_default: PtyReactor | None = None
_default_lock = threading.Lock()


def default_reactor() -> PtyReactor:
    """The process-wide reactor, started on first use."""
    global _default
    with _default_lock:
        if _default is None or not _default.alive:
            _default = PtyReactor()
        return _default
