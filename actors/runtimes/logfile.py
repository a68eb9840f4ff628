"""An agent's output log: append-only, size-capped, rotated — `.corral/logs/<session>.log`.

Written by exactly one thread (the runtime's reader). When the file would pass `max_bytes` it is renamed to
`.1` (older ones shift to `.2` … `.backups`, the oldest is dropped) and a new file is started, so a flooding
agent costs at most `max_bytes * (backups + 1)` of disk.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["RotatingLog"]

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_BACKUPS = 3


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
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size
        self.rotations = 0

    def write(self, data: bytes) -> None:
        while data:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                continue
            chunk, data = data[:room], data[room:]
            os.write(self._fd, chunk)
            self._size += len(chunk)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for n in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = 0
        self.rotations += 1

    def files(self) -> list[Path]:
        """The log and its backups that exist, newest first."""
        names = [
            self.path,
            *(self.path.with_name(f"{self.path.name}.{n}") for n in range(1, self.backups + 1)),
        ]
        return [p for p in names if p.exists()]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
