"""An agent's output log: append-only, size-capped, rotated — `.corral/logs/<session>.log`.

Written by exactly one thread (the runtime's reader). When the file would pass `max_bytes` it is renamed to
`.1` (older ones shift to `.2` … `.backups`, the oldest is dropped) and a new file is started, so a flooding
agent costs at most `max_bytes * (backups + 1)` of disk.

A log that cannot be written (a full disk, a quota, an I/O error) never stops the agent nor its runtime:
`write` drops the output it cannot write, counts it (`dropped_bytes`), says so once in the daemon's log, and
tries again with the next output; the first write that succeeds says how much was lost, in the daemon's log
and as a marker line in the agent's log itself. The runtime keeps the output in memory either way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["RotatingLog"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_BACKUPS = 3
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class RotatingLog:
    """Append bytes to `path`, rotating past `max_bytes`. Not thread-safe: one writer."""

    def __init__(
        self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        if max_bytes < 1024:
            raise ValueError(f"log max_bytes must be at least 1024, got {max_bytes}")
        if backups < 0:
            raise ValueError(f"log backups must be >= 0, got {backups}")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, _FLAGS, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._closed = False
        self.rotations = 0
        self.dropped_bytes = 0  # output that could not be written, since the log was opened
        self._gap = 0  # bytes dropped since the last successful write
        self._failure = ""

    def write(self, data: bytes) -> None:
        """Append `data`; what cannot be written is dropped and counted, never raised."""
        if self._closed:
            return
        if self._gap:  # after a gap: first a line saying what is missing, then the output
            marker = f"\n[corral: {self._gap} bytes of output were not logged: {self._failure}]\n"
            if not self._write_all(marker.encode(errors="replace"), counted=False):
                self._drop(len(data))
                return
            log.warning("writing the agent log %s again; %d bytes were dropped", self.path, self._gap)
            self._gap = 0
        self._write_all(data)

    def _write_all(self, data: bytes, *, counted: bool = True) -> bool:
        """Write `data` (rotating as it fills the file); False if the file cannot take it, the rest then
        counted as dropped (unless not `counted`: a marker of our own)."""
        view = memoryview(data)
        while view:
            try:
                if self._fd < 0:
                    self._reopen()
                room = self.max_bytes - self._size
                if room <= 0:
                    self._rotate()
                    continue
                written = os.write(self._fd, view[:room])
            except OSError as exc:
                self._fail(exc, len(view) if counted else 0)
                return False
            self._size += written
            view = view[written:]
        return True

    def _fail(self, exc: OSError, lost: int) -> None:
        if not self._gap:
            log.warning(
                "cannot write the agent log %s: %s; its output is dropped (and counted) until it can be",
                self.path,
                exc.strerror or exc,
            )
        self._failure = exc.strerror or str(exc)
        self._drop(lost)

    def _drop(self, count: int) -> None:
        self._gap += count
        self.dropped_bytes += count

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.rotations += 1
        self._reopen()

    def _reopen(self) -> None:
        self._fd = os.open(self.path, _FLAGS, 0o600)
        self._size = os.fstat(self._fd).st_size

    def files(self) -> list[Path]:
        """The log and its backups that exist, newest first."""
        names = [
            self.path,
            *(self.path.with_name(f"{self.path.name}.{n}") for n in range(1, self.backups + 1)),
        ]
        return [p for p in names if p.exists()]

    def close(self) -> None:
        self._closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
