"""The heart: a tiny process that runs the daemon as its child and restarts it after any abnormal exit.

    python -m frontends.daemon.heart     # what `corral daemon start` and every autostart run (spawn.py)

As Erlang's `heart` keeps a node alive, the heart keeps the daemon alive while no systemd does: a daemon
killed with -9, by the out-of-memory killer, or ending on a failure (exit 1) is started again — at once the
first time, then after an exponential backoff — until the restart intensity is exceeded (more than 5 restarts
within 30 s by default, `protocols.heart.HeartPolicy`). Then the heart gives up: it says why, and what to
type, in `heart.json` (shown by `corral daemon status`) and in the log, and exits 1. A daemon that stops in
order (exit 0: `corral daemon stop`, SIGTERM) ends the heart too. Under the systemd unit (`daemon start
--foreground`) no heart runs: systemd is the heart.

What it is made of, and why:
- One heart per runtime directory: the `heart.pid` flock (lock.py), taken before anything else, so of two
  clients autostarting at once exactly one heart goes on; the other exits 0 at once.
- It waits for its child on a pidfd (and for its signals on a wakeup pipe) in one blocking `poll()`: no
  thread, no polling loop, no timer but the backoff. It imports neither pykka nor aiohttp.
- The daemon tells it "ready" on a pipe once it serves (READY_FD_ENV). A daemon that exits before it was ever
  ready, the first time, could not start (an unusable database, an unsafe directory): restarting it would only
  fail again, so the heart gives up at once, with the daemon's last log line, and the client that started it
  reports that — as an OTP supervisor fails to start when a child's init fails.
- SIGTERM or SIGINT to the heart stops the daemon in order (SIGTERM to it), then the heart. SIGHUP is passed
  on (reload).
- A heart that finds a daemon already running (the lock held: its previous heart was killed with -9 and the
  daemon started a new heart, see heartlink.py) *adopts* it: it waits for its end on a pidfd. That daemon is
  not its child, so its exit status comes from the record the daemon writes as it returns (`daemon.exit`); a
  daemon killed by a signal leaves none, which counts as abnormal.

kill -9 at any moment: of the heart, the daemon runs on and starts a new heart that adopts it; of the daemon,
the heart restarts it; of both, the next command that needs the daemon starts them again. The state file is
replaced in one rename, so it is whole or old, never half written.
"""

from __future__ import annotations

import collections
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

from frontends.daemon.errors import AlreadyRunning
from frontends.daemon.heartfile import read_exit_record, read_state, write_state
from frontends.daemon.lock import PidLock, lock_holder
from frontends.daemon.paths import RuntimePaths
from frontends.daemon.spawn import daemon_command, log_tail, open_log
from protocols.errors import CorralError
from protocols.heart import (
    HEART_PID_ENV,
    READY_FD_ENV,
    DaemonExit,
    HeartPolicy,
    HeartState,
    HeartStateName,
    describe_exit,
    utc_now,
)

__all__ = ["Heart", "main"]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


@dataclass
class _Watched:
    """The daemon being watched: our child (`process`), or adopted (not our child: no exit status)."""

    pid: int
    pidfd: int
    process: subprocess.Popen[bytes] | None
    ready_fd: int | None
    ready: bool
    ready_at: float = 0.0

    def close(self) -> None:
        for fd in (self.pidfd, self.ready_fd):
            if fd is not None:
                os.close(fd)
        self.ready_fd = None


class Heart:
    """One heart: `run()` until the daemon stops in order (0) or the heart gives up (1). Single-threaded."""

    def __init__(self, paths: RuntimePaths, policy: HeartPolicy) -> None:
        self.paths = paths
        self.policy = policy
        self.pid = os.getpid()
        self.started_at = utc_now()
        self.restarts = 0
        self.window: collections.deque[float] = collections.deque()
        self.failures_in_row = 0
        self.ever_ready = False
        self.stopping = False
        self.daemon_pid: int | None = None
        self.adopted = False
        previous = read_state(paths)
        self.last_exit: DaemonExit | None = previous.last_exit if previous is not None else None
        self._signal_r, self._signal_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # -- the loop --------------------------------------------------------------------------------------------

    def run(self) -> int:
        self._handle_signals()
        self._state("starting")
        while True:
            try:
                watched = self._adopt() or self._spawn()
            except OSError as exc:
                return self._give_up(f"the heart cannot start the daemon: {exc}")
            try:
                code = self._watch(watched)
            finally:
                watched.close()
            if self.stopping:
                return self._stopped(f"the daemon (pid {watched.pid}) stopped; the heart stops too")
            if code == 0:
                holder = lock_holder(self.paths.pid_file)
                if holder is not None and holder != watched.pid:
                    _log("INFO", f"another daemon (pid {holder}) holds the lock: watching it")
                    continue
                return self._stopped(f"the daemon (pid {watched.pid}) stopped in order; the heart stops too")
            outcome = self._abnormal_exit(watched, code)
            if outcome is not None:
                return outcome

    def _abnormal_exit(self, watched: _Watched, code: int | None) -> int | None:
        """Record the exit, then give up (the exit code of the heart) or wait out the backoff (None)."""
        last_line = _last_daemon_line(self.paths) if code is not None and code > 0 else ""
        reason = describe_exit(code, last_line)
        self.daemon_pid = None
        self.last_exit = DaemonExit(pid=watched.pid, at=utc_now(), reason=reason)
        _log("WARNING", f"the daemon (pid {watched.pid}) ended abnormally: {reason}")
        if not watched.ready and not self.ever_ready:
            return self._give_up(
                f"the daemon could not start ({reason}); see {self.paths.log_file}, fix the cause, then: "
                "corral daemon start"
            )
        now = time.monotonic()
        if watched.ready and now - watched.ready_at >= self.policy.reset_after_s:
            self.failures_in_row = 0
        self.window.append(now)
        while self.window and self.window[0] <= now - self.policy.period_s:
            self.window.popleft()
        if self.policy.exceeded(len(self.window)):
            return self._give_up(
                f"the daemon ended abnormally {len(self.window)} times within {self.policy.period_s:g} s "
                f"(more than {self.policy.max_restarts}), last: {reason}; the heart gave up. See "
                f"{self.paths.log_file}, fix the cause, then: corral daemon start"
            )
        delay = self.policy.delay(self.failures_in_row)
        self.failures_in_row += 1
        self.restarts += 1
        self._state("restarting", next_restart_in_s=round(delay, 3))
        _log("INFO", f"restarting the daemon in {delay:g} s (restart {self.restarts})")
        if delay > 0 and self._wait_for_stop(delay):
            return self._stopped("asked to stop while waiting to restart the daemon; the heart stops")
        return None

    # -- the daemon: adopted or started ----------------------------------------------------------------------

    def _adopt(self) -> _Watched | None:
        """The daemon already running in this runtime directory (its heart was lost), or None."""
        holder = lock_holder(self.paths.pid_file)
        if holder is None:
            return None
        try:
            pidfd = os.pidfd_open(holder)
        except ProcessLookupError:
            return None  # it has just ended: start a new one
        if lock_holder(self.paths.pid_file) != holder:  # ended between the two looks: the pid may be reused
            os.close(pidfd)
            return None
        _log("INFO", f"adopting the running daemon (pid {holder})")
        self.ever_ready = True
        self.daemon_pid, self.adopted = holder, True
        self._state("running")
        return _Watched(holder, pidfd, None, None, ready=True, ready_at=time.monotonic())

    def _spawn(self) -> _Watched:
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        env = {k: v for k, v in os.environ.items() if k not in (HEART_PID_ENV, READY_FD_ENV)}
        env[HEART_PID_ENV] = str(self.pid)
        env[READY_FD_ENV] = str(ready_w)
        log_fd = open_log(self.paths.log_file)
        try:
            for target in (1, 2):  # a rotated log: the heart writes to the new file too
                os.dup2(log_fd, target)
            process = subprocess.Popen(
                daemon_command(),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                cwd="/",
                env=env,
                pass_fds=(ready_w,),
                close_fds=True,
            )
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
            os.close(log_fd)
        pidfd = os.pidfd_open(process.pid)
        self.daemon_pid, self.adopted = process.pid, False
        self._state("starting")
        return _Watched(process.pid, pidfd, process, ready_r, ready=False)

    def _watch(self, watched: _Watched) -> int | None:
        """Block until the daemon ends; its exit status (negative: the signal), None if unknown (adopted)."""
        poller = select.poll()
        poller.register(watched.pidfd, select.POLLIN)
        poller.register(self._signal_r, select.POLLIN)
        if watched.ready_fd is not None:
            poller.register(watched.ready_fd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if watched.ready_fd is not None and watched.ready_fd in events:
                if os.read(watched.ready_fd, 64) and not watched.ready:
                    watched.ready, watched.ready_at = True, time.monotonic()
                    self.ever_ready = True
                    self._state("running")
                    _log("INFO", f"the daemon (pid {watched.pid}) is ready")
                poller.unregister(watched.ready_fd)
                os.close(watched.ready_fd)
                watched.ready_fd = None
            if self._signal_r in events:
                self._on_signals(watched.pid)
            if watched.pidfd in events:
                break
        if watched.process is not None:
            return watched.process.wait()
        record = read_exit_record(self.paths)
        return record.status if record is not None and record.pid == watched.pid else None

    # -- signals ---------------------------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        """Each signal writes its number to the wakeup pipe (in C, at once); `poll()` sees it. The
        Python-level handler does nothing: it only has to exist, or SIGCHLD would be ignored and SIGTERM would
        kill us."""
        signal.set_wakeup_fd(self._signal_w, warn_on_full_buffer=False)
        for signum in _HANDLED:
            signal.signal(signum, _ignore)

    def _read_signals(self) -> list[int]:
        try:
            return list(os.read(self._signal_r, 256))
        except BlockingIOError:
            return []

    def _on_signals(self, daemon_pid: int) -> None:
        for signum in self._read_signals():
            if signum in _STOP_SIGNALS and not self.stopping:
                self.stopping = True
                name = signal.Signals(signum).name
                _log("INFO", f"{name}: stopping the daemon (pid {daemon_pid}) in order")
                _send(daemon_pid, signal.SIGTERM)
            elif signum == signal.SIGHUP:
                _send(daemon_pid, signal.SIGHUP)

    def _wait_for_stop(self, seconds: float) -> bool:
        """Wait out a backoff; True if a stop was asked for meanwhile."""
        deadline = time.monotonic() + seconds
        poller = select.poll()
        poller.register(self._signal_r, select.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            if poller.poll(left * 1000) and any(s in _STOP_SIGNALS for s in self._read_signals()):
                self.stopping = True
                return True
        return False

    # -- the state file --------------------------------------------------------------------------------------

    def _state(self, state: HeartStateName, **fields: object) -> None:
        try:
            write_state(
                self.paths,
                HeartState(
                    pid=self.pid,
                    state=state,
                    daemon_pid=self.daemon_pid,
                    adopted=self.adopted,
                    started_at=self.started_at,
                    updated_at=utc_now(),
                    restarts=self.restarts,
                    restarts_in_window=len(self.window),
                    max_restarts=self.policy.max_restarts,
                    period_s=self.policy.period_s,
                    last_exit=self.last_exit,
                    **fields,  # type: ignore[arg-type]
                ),
            )
        except OSError as exc:  # the state is for people to read: never a reason to stop restarting
            _log("WARNING", f"cannot write {self.paths.heart_state_file}: {exc.strerror}")

    def _give_up(self, why: str) -> int:
        _log("ERROR", why)
        self.daemon_pid = None
        self._state("gave_up", gave_up=why)
        return 1

    def _stopped(self, why: str) -> int:
        _log("INFO", why)
        self.daemon_pid = None
        self._state("stopped")
        return 0


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    pass


def _send(pid: int, signum: signal.Signals) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _last_daemon_line(paths: RuntimePaths) -> str:
    """Why the daemon exited 1, from its log: its last ERROR line (main.py logs its reason so, then says it
    stopped), else its last line (the end of a traceback); without the stamp and the level."""
    lines = [line for line in log_tail(paths.log_file, 20) if line.strip() and " corral.heart: " not in line]
    for line in reversed(lines):
        match = _LOG_LINE.match(line)
        if match is not None and match.group(1) in _ERRORS:
            return match.group(2).strip()
    if not lines:
        return ""
    match = _LOG_LINE.match(lines[-1])
    return (match.group(2) if match is not None else lines[-1]).strip()


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\w+)\s+\S+: (.*)$")
_ERRORS = ("ERROR", "CRITICAL")


def _log(level: str, message: str) -> None:
    """One line in the daemon's log, in its format (the heart does not import `logging`)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    sys.stderr.write(f"{stamp} {level:<7} corral.heart: {message}\n")
    sys.stderr.flush()


def main() -> int:
    """Take the heart lock, then run the heart; 0 at once if another heart holds the lock."""
    try:
        paths = RuntimePaths.resolve().prepare()
        lock = PidLock.acquire(paths.heart_pid_file)
    except AlreadyRunning as exc:
        print(f"corral heart: {exc}", file=sys.stderr)
        return 0
    except CorralError as exc:
        _log("ERROR", f"cannot start: {exc}")
        return 1
    with lock:
        policy, problems = HeartPolicy.from_env(os.environ)
        for problem in problems:
            _log("WARNING", problem)
        _log("INFO", f"the heart (pid {os.getpid()}) starts, for {paths.dir}")
        return Heart(paths, policy).run()


if __name__ == "__main__":
    raise SystemExit(main())
