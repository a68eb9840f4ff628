"""A small real disk for full-disk tests: a tmpfs mounted in a temp dir, filled and freed on demand.

Mounting needs root (or CAP_SYS_ADMIN); where it cannot mount, the test using it is skipped with the reason
(`pytest -ra` lists it), never passed silently.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["SmallDisk", "small_disk"]

_TIMEOUT_S = 10


class SmallDisk:
    """A mounted tmpfs of a few MiB: `fill()` takes every free byte with a ballast file, `free()` gives
    them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "ballast"

    def free_bytes(self) -> int:
        fs = os.statvfs(self.path)
        return fs.f_bavail * fs.f_frsize

    def fill(self) -> None:
        """Write the ballast until the disk refuses (ENOSPC): no byte is left for anyone."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        chunk = b"\0" * 4096
        try:
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            for size in (1024, 256, 64, 16, 1):  # tmpfs hands out pages; be thorough all the same
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[SmallDisk]:
    """Mount a `size` tmpfs at `where` (created, mode 0700) for the block; skip the test if it cannot."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to mount a {size} tmpfs for a full disk (running as uid {os.geteuid()})")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {where}: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield SmallDisk(where)
    finally:
        done = subprocess.run(["umount", str(where)], capture_output=True, timeout=_TIMEOUT_S, check=False)
        if done.returncode != 0:  # still in use by a process the test is ending: detach it now
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=_TIMEOUT_S, check=False)
