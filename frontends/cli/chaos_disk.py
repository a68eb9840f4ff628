"""A small disk a chaos campaign can fill: a tmpfs mounted as its CORRAL_HOME (root only).

    disk, why = ChaosDisk.mount(scratch.home, size_mb=128)   # (None, "needs root …") where it cannot mount
    disk.fill(); …; disk.free()                              # every free byte taken, then given back
    disk.unmount()

Filling writes a ballast file until the disk refuses (ENOSPC), so that every writer of the database — the
daemon, the CLI, the agents' `corral signal emit` — meets a real full disk, as tests/disk_kit.py does for the
full-disk tests.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["ChaosDisk"]

_TIMEOUT_S = 10


class ChaosDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "chaos-ballast"

    @classmethod
    def mount(cls, path: Path, size_mb: int) -> tuple[ChaosDisk | None, str]:
        """Mount a tmpfs of `size_mb` MiB on `path` (an empty directory); (None, why) when it cannot."""
        if os.geteuid() != 0:
            return None, f"disk-full needs root to mount a tmpfs (running as uid {os.geteuid()})"
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"disk-full cannot mount a tmpfs at {path}: {exc}"
        if done.returncode != 0:
            return None, f"disk-full cannot mount a tmpfs at {path}: {done.stderr.strip() or done.returncode}"
        return cls(path), ""

    def fill(self) -> None:
        """Write the ballast until the disk refuses: no byte is left for anyone."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 65536, 4096, 512, 64, 1):  # tmpfs hands out pages; be thorough
                chunk = b"\0" * size
                try:
                    while os.write(fd, chunk):
                        pass
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def unmount(self, *, keep: bool = False) -> str:
        """Unmount (lazily if something still holds it); "" or what went wrong. With `keep`, what the disk
        holds (the database) is copied out first and put back in the directory it was mounted on."""
        self.free()
        kept = None
        if keep:
            kept = Path(tempfile.mkdtemp(prefix="corral-chaos-home-"))
            shutil.copytree(self.path, kept, dirs_exist_ok=True)
        for args in (["umount", str(self.path)], ["umount", "-l", str(self.path)]):
            try:
                done = subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"could not unmount {self.path}: {exc}"
            if done.returncode == 0:
                if kept is not None:
                    shutil.copytree(kept, self.path, dirs_exist_ok=True)
                    shutil.rmtree(kept, ignore_errors=True)
                return ""
        return f"could not unmount {self.path}: {done.stderr.strip()}; umount -l {self.path}"
