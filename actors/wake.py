"""The wake-up channel: a process that has just committed a signal pokes the daemon, which applies it at once.

    poke()                                   # in `corral signal emit`, after the commit: ~20 µs, never fails
    listener = WakeListener(on_wake).start() # in the daemon: on_wake runs once per burst of pokes
    listener.close()

The channel is a Unix datagram socket, `<runtime dir>/wake.sock`, next to the daemon's control socket: the
runtime dir is `$CORRAL_RUNTIME_DIR` if set (tests), else `$XDG_RUNTIME_DIR/corral`, else `/tmp/corral-<uid>`
(mode 0700, owned by the user, as tmux does). A poke is one empty datagram sent without blocking; it carries
nothing but "look at the signals table now". A poke is an optimisation only: the signal is already committed,
and the claimer's fallback tick (a cheap `PRAGMA data_version` check) finds it anyway. So `poke` swallows
every error: no daemon (ENOENT, ECONNREFUSED), a full queue (EAGAIN), a path too long.

Why no poke is ever lost when it matters: the kernel queues at most `net.unix.max_dgram_qlen` datagrams; a
poke is dropped only when the queue is not empty, and the listener has yet to receive a datagram that was
queued before the drop, so the wake-up it causes comes after the dropped poke's commit.

The listener holds an exclusive `flock` on `wake.lock` for as long as it listens. That lock, which the
kernel releases when the process dies however it dies, is what tells a live listener from a stale socket
file left by a killed daemon: with the lock held, any existing `wake.sock` is stale and is replaced; without
it, another listener is alive and `start()` refuses with ConflictError. Probing the socket instead (send and
see whether it is refused) races: two daemons starting together could both find it stale and unlink each
other's fresh socket.
"""

from __future__ import annotations

import _socket
import errno
import os
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import msgspec

from protocols.errors import ConflictError, CorralError

if TYPE_CHECKING:
    import logging

__all__ = [
    "NO_LISTENER",
    "RUNTIME_DIR_ENV",
    "WAKE_SOCKET",
    "WakeListener",
    "WakeStatistics",
    "ensure_runtime_dir",
    "poke",
    "poke_status",
    "runtime_dir",
    "wake_socket_path",
]

RUNTIME_DIR_ENV = "CORRAL_RUNTIME_DIR"
"""Overrides corral's runtime directory (its sockets); tests point it at a private temp dir."""

WAKE_SOCKET = "wake.sock"
_LOCK_FILE = "wake.lock"
_MAX_SUN_PATH = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_RECV_SIZE = 64
_SOCK_FLAGS = _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC


def _log() -> logging.Logger:
    import logging  # lazily: `corral signal emit` imports this module for `poke`, and logging costs ~3 ms

    return logging.getLogger(__name__)


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """corral's directory for sockets: $CORRAL_RUNTIME_DIR, else $XDG_RUNTIME_DIR/corral if that directory
    exists, else /tmp/corral-<uid>. The daemon (`frontends/daemon/paths.py`) resolves its directory, where
    its control socket lives, with this same function. Computes the path only; `ensure_runtime_dir` creates
    and checks it."""
    env = os.environ if env is None else env
    if override := env.get(RUNTIME_DIR_ENV):
        return Path(override).expanduser().absolute()
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return Path(xdg) / "corral"
    return Path(f"/tmp/corral-{os.getuid()}")


def wake_socket_path() -> Path:
    """Where the daemon listens for pokes: `runtime_dir() / "wake.sock"`."""
    return runtime_dir() / WAKE_SOCKET


def check_runtime_dir(path: Path, error: type[CorralError] = CorralError) -> None:
    """Refuse a runtime directory that is not a real directory (a symlink, a file), not ours, or writable by
    group or others — in a shared /tmp another user could have made it, or opened it up, to plant a socket
    of their own — raising `error` saying how to fix it; tighten one that others may merely read to 0700. A
    missing directory is fine: nothing can be listening in it. The daemon's `RuntimePaths.check` is this."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise error(f"cannot use the corral runtime directory {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise error(
            f"the corral runtime directory {path} is not a directory (a symlink or a file?); remove it, or "
            f"set {RUNTIME_DIR_ENV}"
        )
    if info.st_uid != os.getuid():
        raise error(
            f"the corral runtime directory {path} belongs to uid {info.st_uid}, not to you (uid "
            f"{os.getuid()}): someone else may be listening there; remove it, or set {RUNTIME_DIR_ENV} to a "
            "directory you own"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise error(
            f"the corral runtime directory {path} is writable by group or others (mode {mode:04o}): another "
            f"user could plant a socket in it; fix it with: chmod 700 {path}"
        )
    if mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            raise error(f"cannot chmod 700 {path}: {exc.strerror}") from None


def ensure_runtime_dir(path: Path | None = None) -> Path:
    """Create `path` (default `runtime_dir()`) with mode 0700, or check that the existing one is safe.

    Safe means a real directory (not a symlink) owned by this user that nobody else may write to: in a shared
    /tmp another user could have created it, or opened it up, to plant a socket of their own. CorralError
    saying how to fix it otherwise. A directory of ours that others may merely read is tightened to 0700.
    """
    path = runtime_dir() if path is None else path
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CorralError(
            f"cannot create the corral runtime directory {path}: {exc.strerror}; set {RUNTIME_DIR_ENV} to a "
            "directory you own"
        ) from None
    check_runtime_dir(path)
    return path


NO_LISTENER = frozenset({errno.ENOENT, errno.ECONNREFUSED})
"""What `poke_status` returns when nothing listens: no socket file, or one a killed daemon left behind."""


def poke(path: Path | str | None = None) -> bool:
    """Tell the daemon listening at `path` (default `wake_socket_path()`) to look at the signals now.

    One non-blocking datagram, about 20 µs. Never raises and never waits: without a listener
    nothing happens, and the claimer's fallback tick applies the signal within a second. True if the
    datagram was queued.
    """
    return poke_status(path) == 0


def poke_status(path: Path | str | None = None) -> int:
    """`poke`, returning 0 if the datagram was queued, else the errno (-1 if there was none): one of
    NO_LISTENER means no daemon listens. Never raises."""
    try:
        target = os.fspath(path) if path is not None else os.fspath(wake_socket_path())
        sock = _socket.socket(_socket.AF_UNIX, _SOCK_FLAGS | _socket.SOCK_NONBLOCK)
    except Exception:
        return -1
    try:
        sock.sendto(b"", target)
    except OSError as exc:
        return exc.errno if exc.errno is not None else -1
    except Exception:
        return -1
    finally:
        sock.close()
    return 0


class WakeStatistics(msgspec.Struct, frozen=True):
    """What a listener has heard: datagrams received, and callbacks made (one per burst)."""

    path: str
    listening: bool
    pokes: int
    wakeups: int


class WakeListener:
    """Listens on the wake socket on its own daemon thread; calls `on_wake()` once per burst of pokes.

        with WakeListener(lambda: ref.tell(Wake()), path) as listener:
            ...                                  # bound and listening until the block ends

    `on_wake` runs on the listener's thread and must be quick (a `tell` is). Every datagram already queued
    is read before the call, so a burst of pokes costs one call; a poke that arrives during the call causes
    another one. Exceptions from `on_wake` are logged, never fatal.
    """

    def __init__(self, on_wake: Callable[[], None], path: Path | None = None) -> None:
        self.on_wake = on_wake
        self.path = Path(path) if path is not None else wake_socket_path()
        self._sock: _socket.socket | None = None
        self._lock_fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._stop_r: int | None = None
        self._stop_w: int | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._pokes = 0
        self._wakeups = 0

    # -- starting and stopping ------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the socket (replacing a stale one) and start listening.

        ConflictError if another listener holds the socket; CorralError if the directory is unsafe or the
        path is too long for a Unix socket.
        """
        if self._thread is not None:
            raise RuntimeError("this WakeListener was already started")
        encoded = os.fsencode(self.path)
        if len(encoded) > _MAX_SUN_PATH:
            raise CorralError(
                f"the wake socket path {self.path} is {len(encoded)} bytes, more than a Unix socket allows "
                f"({_MAX_SUN_PATH}): set {RUNTIME_DIR_ENV} to a shorter directory"
            )
        directory = ensure_runtime_dir(self.path.parent)
        try:
            self._lock(directory / _LOCK_FILE)
            self._bind()
            self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._run, name="corral-wake", daemon=True)
        self._thread.start()
        return self

    def _lock(self, lock_path: Path) -> None:
        import fcntl

        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConflictError(
                f"another corral process (pid {holder}) is already listening on {self.path}: stop it "
                f"(corral daemon stop), or set {RUNTIME_DIR_ENV} to another directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _bind(self) -> None:
        # We hold the lock, so whatever sits at the path was left by a listener that died: replace it.
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        sock = _socket.socket(_socket.AF_UNIX, _SOCK_FLAGS)
        try:
            sock.bind(os.fspath(self.path))
            os.chmod(self.path, 0o600)
            info = os.stat(self.path)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._inode = (info.st_dev, info.st_ino)

    def close(self) -> None:
        """Stop listening, remove the socket file (if it is still ours) and release the lock. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._stop_w is not None:
            try:
                os.write(self._stop_w, b"x")
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._release()

    def _release(self) -> None:
        if self._sock is not None:
            try:
                info = os.stat(self.path)
                if (info.st_dev, info.st_ino) == self._inode:
                    os.unlink(self.path)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        for fd in (self._stop_r, self._stop_w, self._lock_fd):  # closing the lock's fd releases the flock
            if fd is not None:
                os.close(fd)
        self._stop_r = self._stop_w = self._lock_fd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- listening ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        import select

        sock, stop_r = self._sock, self._stop_r
        assert sock is not None and stop_r is not None
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(stop_r, select.POLLIN)
        while not self._closed.is_set():
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            if self._closed.is_set() or any(fd == stop_r for fd, _ in ready):
                return
            received = self._drain(sock)
            if not received:
                continue
            self._pokes += received
            self._wakeups += 1
            try:
                self.on_wake()
            except Exception:
                _log().exception("wake callback %r failed", self.on_wake)

    @staticmethod
    def _drain(sock: _socket.socket) -> int:
        """Read every queued datagram without blocking; the count."""
        count = 0
        while True:
            try:
                sock.recv(_RECV_SIZE, _socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return count
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return count
                _log().warning("wake socket: %s", exc)
                return count
            count += 1

    def statistics(self) -> WakeStatistics:
        listening = self._thread is not None and self._thread.is_alive() and not self._closed.is_set()
        return WakeStatistics(str(self.path), listening, self._pokes, self._wakeups)

    def __repr__(self) -> str:
        return f"WakeListener({str(self.path)!r})"
