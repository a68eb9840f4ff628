"""What can go wrong with the daemon, as errors a person can act on.

CorralError
└── DaemonError              the daemon could not be reached, started or stopped
    ├── DaemonNotRunning     nothing answers on the socket (the CLI says how to start it)
    ├── DaemonStartError     a started daemon exited or did not answer in time (with its log's last lines)
    ├── AlreadyRunning       another daemon holds the pid lock (carries its pid)
    └── RuntimeDirError      the runtime directory is unsafe or unusable (owner, mode, path length)
"""

from __future__ import annotations

from protocols.errors import CorralError

__all__ = ["AlreadyRunning", "DaemonError", "DaemonNotRunning", "DaemonStartError", "RuntimeDirError"]


class DaemonError(CorralError):
    """The daemon could not be reached, started or stopped."""


class DaemonNotRunning(DaemonError):
    """Nothing answers on the control socket."""

    def __init__(self, socket: str, why: str = "") -> None:
        self.socket = socket
        because = f"; {why}" if why else ""
        super().__init__(
            f"the corral daemon is not running (no answer on {socket}{because}); "
            "start it: corral daemon start"
        )


class DaemonStartError(DaemonError):
    """A daemon we started exited, or did not answer in time."""


class AlreadyRunning(DaemonError):
    """Another daemon holds the pid lock; `pid` is None while that one has not written its pid yet."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        super().__init__(f"already running (pid {pid})" if pid else "already running (starting)")


class RuntimeDirError(DaemonError):
    """The runtime directory cannot be used safely: owned by someone else, writable by others, or unusable."""
