"""The daemon's side of its heart: who keeps this daemon alive, and a new heart when the old one is lost.

    link = HeartLink(paths, under_heart=True)   # the daemon was started by a heart (main.py knows)
    link.start()                                # watch the heart; replace it if it dies
    link.report()                               # HeartReport for GET /v1/status
    link.close()

The heart restarts the daemon; nothing restarts the heart. So a daemon started by a heart watches that heart
in turn — whoever holds the `heart.pid` lock, waited on through a pidfd in one blocking `poll()`, no polling —
and when it is gone (killed with -9: a heart never ends otherwise while its daemon runs) starts a new heart,
which finds this daemon holding the daemon lock and adopts it. The daemon stays up throughout; only the
restart it would need if it died is missing, for the ~100 ms the new heart takes to start. If new hearts keep
ending (3 within a minute) the daemon stops trying and says so in its status, with the command that puts it
under a heart again (`corral daemon restart`).

Why not the other way round — clients noticing the missing heart? A client only looks when a person runs a
command, and an agent's `signal emit` only pokes a socket: the daemon could die unwatched in between. The
daemon knows at once.

A daemon started with `--foreground` has no heart and starts none: under systemd (INVOCATION_ID is set),
systemd is its heart; by hand, nothing is, and the status says so.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from frontends.daemon.heartfile import heart_report
from frontends.daemon.lock import lock_holder
from frontends.daemon.paths import RuntimePaths
from protocols.heart import HeartReport, SupervisedBy

if TYPE_CHECKING:
    import subprocess

__all__ = ["HeartLink"]

log = logging.getLogger(__name__)

MAX_NEW_HEARTS = 3
NEW_HEARTS_PERIOD_S = 60.0
_LOCK_WAIT_S = 10.0


class HeartLink:
    """Watches the heart on a thread of its own (`corral-heart-watch`); thread-safe `report()`."""

    def __init__(
        self,
        paths: RuntimePaths,
        *,
        under_heart: bool,
        spawn: Callable[[RuntimePaths], subprocess.Popen[bytes]] | None = None,
    ) -> None:
        self.paths = paths
        self.under_heart = under_heart
        self._spawn = spawn
        self._closing = threading.Event()
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread: threading.Thread | None = None
        self.respawn_failure = ""
        self.new_hearts = 0

    @property
    def supervised_by(self) -> SupervisedBy:
        """What restarts this daemon if it dies, as it was started: its heart, systemd, or nothing."""
        if self.under_heart:
            return "heart"
        return "systemd" if os.environ.get("INVOCATION_ID") else "foreground"

    def start(self) -> HeartLink:
        if self.under_heart and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="corral-heart-watch", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop watching (the daemon is stopping: its heart ends after it, and must not be replaced)."""
        if self._closing.is_set():
            return
        self._closing.set()
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def report(self) -> HeartReport:
        report = heart_report(self.paths, self.supervised_by, self.respawn_failure)
        if report.running and report.supervised_by != "heart":  # a --foreground daemon adopted by a heart
            import msgspec

            report = msgspec.structs.replace(report, supervised_by="heart")
        return report

    # -- the watch -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        started: collections.deque[float] = collections.deque()
        while not self._closing.is_set():
            holder = lock_holder(self.paths.heart_pid_file)
            if holder is None:
                now = time.monotonic()
                while started and started[0] <= now - NEW_HEARTS_PERIOD_S:
                    started.popleft()
                if len(started) >= MAX_NEW_HEARTS:
                    self.respawn_failure = (
                        f"{len(started)} new hearts ended within {NEW_HEARTS_PERIOD_S:g} s; "
                        f"see {self.paths.log_file}"
                    )
                    log.error("the daemon has no heart: %s", self.respawn_failure)
                    return
                started.append(now)
                self._replace_heart()
                continue
            self._wait_for_end_of(holder)

    def _replace_heart(self) -> None:
        log.warning("the daemon's heart is gone (killed?): starting a new heart to watch this daemon")
        spawn = self._spawn
        if spawn is None:
            from frontends.daemon.spawn import spawn_heart as spawn
        try:
            process = spawn(self.paths)
        except Exception as exc:  # a new heart is help, not a condition to serve: report, never crash
            self.respawn_failure = f"cannot start a new heart: {exc}"
            log.error("%s", self.respawn_failure)
            self._closing.wait(5)
            return
        self.new_hearts += 1
        # The heart is our child: reap it whenever it ends, so it never lingers as a zombie.
        threading.Thread(target=process.wait, name="corral-heart-reaper", daemon=True).start()
        deadline = time.monotonic() + _LOCK_WAIT_S
        delay = 0.005
        while time.monotonic() < deadline and not self._closing.is_set():
            if lock_holder(self.paths.heart_pid_file) is not None or process.poll() is not None:
                return  # holding its lock (or lost it to another heart, or failed: the loop looks again)
            self._closing.wait(delay)
            delay = min(delay * 2, 0.1)

    def _wait_for_end_of(self, heart_pid: int) -> None:
        try:
            pidfd = os.pidfd_open(heart_pid)
        except ProcessLookupError:
            return
        try:
            if lock_holder(self.paths.heart_pid_file) != heart_pid:
                return  # it ended between the two looks
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.register(self._stop_r, select.POLLIN)
            ready = dict(poller.poll())
            if pidfd in ready and not self._closing.is_set():
                self.respawn_failure = ""
                log.warning("the daemon's heart (pid %d) ended", heart_pid)
        finally:
            os.close(pidfd)
