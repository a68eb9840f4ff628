"""What the kernel says about an agent's processes: /proc reads, metrics, and killing a whole tree.

Agent CLIs are wrappers around native children, and children may call setsid() to escape their process
group, so "kill the agent" means: SIGTERM the process group, wait, SIGKILL it, then sweep every process whose
session id is the agent's and SIGKILL those too, and finally check that nothing is left (the reference's
troubleshooting: "process keeps running after destroy()"). Linux only; every read tolerates a process that
vanished in between.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping

import msgspec

from actors.clock import Recent

__all__ = [
    "TOKEN_VAR",
    "CpuSampler",
    "FleetMetrics",
    "ProcStat",
    "RuntimeMetrics",
    "kill_tree",
    "read_stat",
    "session_processes",
    "tagged_sessions",
    "tree",
    "trees",
]

TOKEN_VAR = "CORRAL_RUNTIME_TOKEN"
"""Every agent's environment carries a unique token: a sweep finds, by it, the processes that escaped both
the agent's process group and its session (setsid), even after the agent itself is gone."""

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ProcStat(msgspec.Struct, frozen=True):
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    cpu_s: float  # user + system
    rss_bytes: int
    start_ticks: int


class RuntimeMetrics(msgspec.Struct, frozen=True):
    """cpu % since the previous sample, resident memory and uptime of the agent's process tree."""

    pid: int | None
    processes: int
    cpu_percent: float
    rss_bytes: int
    uptime_s: float


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = raw[raw.rfind(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        state=fields[0],
        cpu_s=(int(fields[11]) + int(fields[12])) / _CLK_TCK,
        rss_bytes=int(fields[21]) * _PAGE,
        start_ticks=int(fields[19]),
    )


def _all_stats() -> list[ProcStat]:
    stats = []
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := read_stat(int(name))) is not None:
            stats.append(st)
    return stats


SNAPSHOT_MAX_AGE_S = 0.25
"""How old a shared /proc snapshot may be for metrics (never for killing)."""
_recent_stats = Recent(_all_stats, SNAPSHOT_MAX_AGE_S)
"""Every process, from one /proc scan shared by callers within SNAPSHOT_MAX_AGE_S: listing 50 agents'
metrics is one scan instead of 50 (each scan reads every process's stat file)."""


def tree(root: int, *, recent: bool = False) -> list[ProcStat]:
    """`root` and all its descendants that are alive (zombies excluded). `recent`: from a snapshot up to
    SNAPSHOT_MAX_AGE_S old (metrics); the default scans now (anything that kills must)."""
    return trees((root,), recent=recent)[root]


def trees(roots: Iterable[int], *, recent: bool = False) -> dict[int, list[ProcStat]]:
    """`tree` of each root, from one scan (or one recent snapshot) and one pass over it: a list of fifty
    agents' metrics reads /proc once and walks it once."""
    stats = _recent_stats.get() if recent else _all_stats()
    children: dict[int, list[ProcStat]] = {}
    by_pid: dict[int, ProcStat] = {}
    for st in stats:
        children.setdefault(st.ppid, []).append(st)
        by_pid[st.pid] = st
    return {root: _descendants(by_pid.get(root), children) for root in roots}


def _descendants(top: ProcStat | None, children: dict[int, list[ProcStat]]) -> list[ProcStat]:
    if top is None:
        return []
    out, todo = [], [top]
    while todo:
        st = todo.pop()
        if st.state != "Z":
            out.append(st)
        todo.extend(children.get(st.pid, ()))
    return out


def session_processes(sids: Iterable[int]) -> list[ProcStat]:
    """Every live process whose session id is one of `sids`."""
    wanted = set(sids)
    return [st for st in _all_stats() if st.sid in wanted and st.state != "Z"]


def tagged_sessions(token: str) -> set[int]:
    """The session ids of live processes whose environment holds `TOKEN_VAR=token`."""
    needle = f"{TOKEN_VAR}={token}\0".encode()
    me = os.getpid()
    sids = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue  # gone, or not ours to read
        if needle in environ and (st := read_stat(int(name))) is not None and st.state != "Z":
            sids.add(st.sid)
    return sids


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_tree(root: int | None, *, sids: Iterable[int] = (), grace_s: float = 2.0) -> list[int]:
    """Kill `root`'s process tree and every process in the sessions `sids` (plus root's own session).

    SIGTERM everything, wait up to `grace_s` for it to go, SIGKILL what is left, sweep the sessions again
    (a setsid grandchild escapes its group but keeps a recognisable parent chain until then). Returns the
    pids still alive afterwards: an empty list means nothing survived.
    """
    sessions = set(sids)
    targets = {st.pid for st in tree(root)} if root else set()
    if root and (st := read_stat(root)) is not None:
        sessions.add(st.sid)
    targets |= {st.pid for st in session_processes(sessions)}
    targets.discard(os.getpid())
    _signal(targets, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(targets):
            break
        time.sleep(0.02)
    survivors = _alive(targets) | {st.pid for st in session_processes(sessions)} - {os.getpid()}
    _signal(survivors, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and _alive(survivors):
        time.sleep(0.01)
    return sorted(_alive(survivors))


def _alive(pids: Iterable[int]) -> set[int]:
    return {pid for pid in pids if (st := read_stat(pid)) is not None and st.state != "Z"}


class CpuSampler:
    """cpu % of a process tree between two samples (like top): keep one per runtime."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self._percent = 0.0

    def sample(
        self, root: int | None, started_at: float, procs: list[ProcStat] | None = None
    ) -> RuntimeMetrics:
        """The metrics of `root`'s tree now; `procs`: that tree as `trees` read it (else read here)."""
        now = time.monotonic()
        if procs is None:
            procs = tree(root, recent=True) if root else []
        cpu = sum(st.cpu_s for st in procs)
        percent = self._percent
        if self._last is None or now - self._last[0] > SNAPSHOT_MAX_AGE_S:
            # A shorter interval could read the same snapshot twice: keep the last figure instead.
            if self._last is not None:
                percent = max(0.0, (cpu - self._last[1]) / (now - self._last[0]) * 100)
            self._last, self._percent = (now, cpu), percent
        return RuntimeMetrics(
            pid=root,
            processes=len(procs),
            cpu_percent=round(percent, 1),
            rss_bytes=sum(st.rss_bytes for st in procs),
            uptime_s=max(0.0, now - started_at),
        )


class FleetMetrics:
    """The metrics of many agents at once — one /proc snapshot, one walk — keeping a CpuSampler per agent
    (cpu % is the difference between two samples). For a list: `sample` is called with the agents of one
    group (a project) each time, and forgets the samplers of agents no longer in it. Thread-safe."""

    def __init__(self) -> None:
        self._samplers: dict[tuple[str, str], tuple[int, CpuSampler]] = {}
        self._lock = threading.Lock()

    def sample(self, group: str, agents: Mapping[str, tuple[int, float | None]]) -> dict[str, RuntimeMetrics]:
        """name → (pid, process start on time.monotonic, None: unknown) → name → its metrics now."""
        procs = trees((pid for pid, _ in agents.values()), recent=True)
        out = {}
        with self._lock:
            for key in [k for k in self._samplers if k[0] == group and k[1] not in agents]:
                del self._samplers[key]
            for name, (pid, started_at) in agents.items():
                held = self._samplers.get((group, name))
                if held is None or held[0] != pid:
                    held = self._samplers[(group, name)] = (pid, CpuSampler())
                start = started_at if started_at is not None else time.monotonic()
                out[name] = held[1].sample(pid, start, procs[pid])
        return out
