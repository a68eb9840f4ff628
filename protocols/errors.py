"""The errors corral reports to people.

Every error a user can cause is a `CorralError` whose message says what was wrong, where (file:line, key,
task, title) and, where it helps, what to do. The CLI prints the message, never a traceback, and exits with
`exit_code`: 1 for a failure, 2 for a usage error.

    CorralError
    ├── UsageError            bad arguments, unknown names (exit 2)
    │   ├── NotInRepoError    corral run outside a git repository (exit 2)
    │   └── TooLargeError     a task's content or a signal's payload over its size cap (exit 2; API 413)
    ├── ConfigError           .corral/config.toml is invalid
    ├── PlanError             a plan's markdown is malformed
    ├── TransitionError       an event does not fit a task's status, or an agent sent a user-only event
    ├── PayloadError          a signal's payload does not match its type
    ├── NotFoundError         no such task, signal, instance
    ├── ConflictError         the thing already exists, or a constraint forbids it
    ├── ToolError             a program corral needs is missing or cannot act (gh not installed, not
    │                         logged in): says which, and the command that fixes it (API 424)
    ├── StoreError            the database cannot be opened or is newer than this corral
    │   └── DiskFullError     the disk holding the database is full: nothing new can be written
    └── SupervisionError      a child could not be started, or a supervisor gave up
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "CorralError",
    "DiskFullError",
    "NotFoundError",
    "NotInRepoError",
    "PayloadError",
    "PlanError",
    "StoreError",
    "SupervisionError",
    "TooLargeError",
    "ToolError",
    "TransitionError",
    "UsageError",
]


class CorralError(Exception):
    """Base of every error corral reports to a person; `exit_code` is what the CLI exits with."""

    exit_code: int = 1


class UsageError(CorralError):
    """The command line or a name given on it is wrong."""

    exit_code = 2


class NotInRepoError(UsageError):
    """corral needs a git repository: the project is its main repository's root."""

    def __init__(self, message: str = "corral must be run from within a git repository") -> None:
        super().__init__(message)


class TooLargeError(UsageError):
    """Text over its size cap (a task's content, a signal's payload): names what, its size and the cap."""

    def __init__(self, what: str, size: int, cap: int) -> None:
        self.what, self.size, self.cap = what, size, cap
        super().__init__(
            f"{what} is {_bytes(size)}, over the cap of {_bytes(cap)}: nothing was stored; keep it under "
            f"{_bytes(cap)} (a long plan can be split into several tasks)"
        )


def _bytes(count: int) -> str:
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB ({count} bytes)"
    return f"{count} bytes"


class ConfigError(CorralError):
    """A configuration file is invalid: names the file, the key and the reason."""

    def __init__(self, path: str, key: str, reason: str) -> None:
        self.path, self.key, self.reason = path, key, reason
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {reason}")


class PlanError(CorralError):
    """A plan is malformed: names the line (1-based; 0 when the whole plan is at fault)."""

    def __init__(self, line: int, reason: str, source: str = "plan") -> None:
        self.line, self.reason, self.source = line, reason, source
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


class TransitionError(CorralError):
    """An event cannot be applied: it does not fit the status, or the sender may not send it."""


class PayloadError(CorralError):
    """A signal's payload is not what its type requires."""


class NotFoundError(CorralError):
    """The named task, signal or instance does not exist."""


class ConflictError(CorralError):
    """The thing already exists, or a rule (one implementing task per topic, …) forbids the change."""


class ToolError(CorralError):
    """A program corral runs for a person is missing, or cannot do it as things are (GitHub's `gh` not
    installed, or not logged in): the message names it and the command that fixes it."""


class StoreError(CorralError):
    """The database cannot be opened, migrated or written."""


class DiskFullError(StoreError):
    """The disk holding the database is full: the message names the directory. Nothing was written; the
    same request succeeds once space is freed."""


class SupervisionError(CorralError):
    """A child could not be started, or a supervisor gave up after too many restarts."""
