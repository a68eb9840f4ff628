"""Where a daemon keeps its files: the runtime directory, the control socket, the pid lock, the log.

    paths = RuntimePaths.resolve()   # $CORRAL_RUNTIME_DIR, $XDG_RUNTIME_DIR/corral or /tmp/corral-<uid>
    paths.prepare()                  # created 0700; refused if someone else could plant a socket in it
    paths.socket, paths.pid_file, paths.log_file     # the daemon's
    paths.heart_pid_file, paths.heart_state_file      # its heart's (heart.py)

Why the directory is checked, and by clients too: `/tmp/corral-<uid>` has a predictable name in a
world-writable place. Another user who creates it first (or makes it writable for everyone) could put a
socket of their own there, and the CLI would send its requests — and trust the answers — to a fake daemon.
So a directory that is not ours, or that group or others may write to, is refused with a message that says
how to fix it, as tmux does for its socket directory. A directory that is ours but merely readable by others
is tightened to 0700.

The socket path must fit in `sun_path` (108 bytes with the NUL): a longer one is refused up front rather than
failing in `bind()` with a cryptic error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from frontends.daemon.errors import RuntimeDirError

__all__ = ["MAX_SOCKET_PATH", "RUNTIME_ENV", "RuntimePaths", "default_runtime_dir"]

RUNTIME_ENV = "CORRAL_RUNTIME_DIR"
"""Overrides the runtime directory (tests give each daemon its own)."""

MAX_SOCKET_PATH = 107
"""The longest socket path `bind()` accepts on Linux, in bytes (sun_path is 108 with the NUL)."""


def default_runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """$CORRAL_RUNTIME_DIR, else $XDG_RUNTIME_DIR/corral if that directory exists, else /tmp/corral-<uid>:
    the rule `actors.wake` uses too, so the wake socket sits beside the control socket."""
    from actors.wake import runtime_dir

    return runtime_dir(env)


@dataclass(frozen=True)
class RuntimePaths:
    """The runtime directory of one daemon and the files in it. Immutable; touches the disk only in
    `prepare()` and `check()`."""

    dir: Path

    @classmethod
    def resolve(
        cls, runtime_dir: Path | str | None = None, env: Mapping[str, str] | None = None
    ) -> RuntimePaths:
        """The paths under `runtime_dir`, or under `default_runtime_dir(env)` when it is None."""
        directory = Path(runtime_dir).expanduser().absolute() if runtime_dir else default_runtime_dir(env)
        return cls(directory)

    @property
    def socket(self) -> Path:
        return self.dir / "daemon.sock"

    @property
    def pid_file(self) -> Path:
        return self.dir / "daemon.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "daemon.log"

    @property
    def heart_pid_file(self) -> Path:
        """The heart's pid lock: one heart per runtime directory (see heart.py)."""
        return self.dir / "heart.pid"

    @property
    def heart_state_file(self) -> Path:
        """The heart's state (`protocols.heart.HeartState`), for `corral daemon status` and GET /v1/status."""
        return self.dir / "heart.json"

    @property
    def exit_record_file(self) -> Path:
        """The exit status the last daemon returned (`protocols.heart.ExitRecord`), for a heart that adopted
        it."""
        return self.dir / "daemon.exit"

    @property
    def stopped_file(self) -> Path:
        """Written by `corral daemon stop`, removed when a daemon starts: an autostart then says it restarted
        a daemon someone had stopped on purpose."""
        return self.dir / "daemon.stopped"

    def prepare(self) -> RuntimePaths:
        """Create the directory (mode 0700) if it is missing, then `check()` it. Returns self."""
        self._check_socket_length()
        if not self.dir.exists():
            try:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(self.dir, 0o700)  # mkdir's mode is filtered by the umask
            except OSError as exc:
                raise RuntimeDirError(
                    f"cannot create the corral runtime directory {self.dir}: {exc.strerror}; "
                    f"set {RUNTIME_ENV} to a directory you own"
                ) from None
        self.check()
        return self

    def check(self) -> None:
        """Refuse a directory that is not ours, not a directory, or writable by group or others; tighten one
        that others can merely read. A missing directory is fine (nothing can be listening in it)."""
        from actors.wake import check_runtime_dir

        check_runtime_dir(self.dir, RuntimeDirError)

    def _check_socket_length(self) -> None:
        length = len(os.fsencode(self.socket))
        if length > MAX_SOCKET_PATH:
            raise RuntimeDirError(
                f"the control socket path {self.socket} is {length} bytes long, more than a Unix socket "
                f"allows ({MAX_SOCKET_PATH}); set {RUNTIME_ENV} to a shorter directory"
            )
