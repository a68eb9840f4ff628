"""The processes of a chaos campaign, found in /proc: its daemon and heart, its tmux server, its agents.

    procs = campaign_processes(home, socket)     # [Proc(pid=812, kind="agent", title="chaos-3-W1-T2", …), …]

A campaign's processes are recognised by what they inherit: everything its daemon starts carries the
campaign's CORRAL_HOME in its environment (the daemon and its heart, the tmux server the daemon started, every
agent and every process an agent starts), and the tmux server's command line names the campaign's socket.
The tmux server is the process named `tmux: server` (a tmux client, such as the daemon's control-mode
client, is `other`). An agent is a corral-sim process with CORRAL_INSTANCE_TITLE set (not its `corral
signal emit` or git children — which, between their fork and their exec, look exactly like the agent — nor
the setsid grandchild it may spawn: those are `other`). Zombies are not processes any more: they are left
out. Linux only; this process itself is never listed.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

__all__ = ["Proc", "campaign_processes", "describe"]

_DAEMON = b"frontends.daemon.main"
_HEART = b"frontends.daemon.heart"
_GRANDCHILD = b"corral-sim-grandchild"


class Proc(msgspec.Struct, frozen=True):
    """A live process of the campaign. `kind`: daemon | heart | tmux | agent | other. `state` is the letter
    of /proc/PID/stat (R, S, D, T for stopped…)."""

    pid: int
    kind: str
    state: str = ""
    title: str = ""  # an agent's CORRAL_INSTANCE_TITLE
    task: str = ""  # an agent's CORRAL_TASK
    command: str = ""  # the command line, shortened, for reports
    ppid: int = 0
    in_tmux: bool = False  # an agent whose parent is the tmux server (a pane's process)


def campaign_processes(home: Path, socket: str) -> list[Proc]:
    """Every live process whose environment has CORRAL_HOME=`home`, or whose command line names the tmux
    `socket`; this process excluded."""
    marker = f"CORRAL_HOME={home}".encode()
    socket_word = socket.encode()
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
            environ = Path(entry.path, "environ").read_bytes()
            state, ppid = _stat(Path(entry.path, "stat").read_text())
        except OSError:  # gone meanwhile, or not ours to read
            continue
        argv = cmdline.split(b"\0")
        variables = environ.split(b"\0")
        is_tmux = b"tmux" in argv[0] and socket_word in argv
        if not is_tmux and marker not in variables:
            continue
        if state in ("Z", "X", ""):
            continue
        if is_tmux:
            try:
                is_tmux = Path(entry.path, "comm").read_text().strip() == "tmux: server"
            except OSError:
                continue
        found.append(
            msgspec.structs.replace(_classify(int(entry.name), argv, variables, state, is_tmux), ppid=ppid)
        )
    servers = {p.pid for p in found if p.kind == "tmux"}
    agents = {p.pid for p in found if p.kind == "agent"}
    return [_placed(p, servers, agents) for p in found]


def _placed(proc: Proc, servers: set[int], agents: set[int]) -> Proc:
    """An agent whose parent is an agent is the agent's own child between its fork and its exec (a git or
    `corral signal emit` about to start): `other`, not a second agent. One whose parent is the tmux server is
    a pane's process."""
    if proc.kind != "agent":
        return proc
    if proc.ppid in agents:
        return msgspec.structs.replace(proc, kind="other")
    return msgspec.structs.replace(proc, in_tmux=proc.ppid in servers)


def _stat(stat: str) -> tuple[str, int]:
    """The state letter and the parent's pid, from /proc/PID/stat: after the command's closing parenthesis
    (which may hold spaces)."""
    _, _, rest = stat.rpartition(")")
    fields = rest.split()
    if len(fields) < 2:
        return "", 0
    return fields[0], int(fields[1])


def _classify(pid: int, argv: list[bytes], variables: list[bytes], state: str, is_tmux: bool) -> Proc:
    command = b" ".join(argv).decode("utf-8", "replace")[:120]
    if is_tmux:
        return Proc(pid, "tmux", state, command=command)
    if _DAEMON in argv:
        return Proc(pid, "daemon", state, command=command)
    if _HEART in argv:
        return Proc(pid, "heart", state, command=command)
    env = dict(v.split(b"=", 1) for v in variables if b"=" in v)
    title = env.get(b"CORRAL_INSTANCE_TITLE", b"").decode("utf-8", "replace")
    is_sim = any(Path(a.decode("utf-8", "replace")).name == "corral-sim" for a in argv[:2])
    if title and is_sim and _GRANDCHILD not in argv:
        task = env.get(b"CORRAL_TASK", b"").decode("utf-8", "replace")
        return Proc(pid, "agent", state, title=title, task=task, command=command)
    return Proc(pid, "other", state, command=command)


def describe(proc: Proc) -> str:
    """`agent chaos-3-W1-T2 (pid 812)`, `tmux server (pid 700)`, for reports."""
    if proc.kind == "agent":
        return f"agent {proc.title} (pid {proc.pid})"
    if proc.kind == "tmux":
        return f"tmux server (pid {proc.pid})"
    if proc.kind == "other":
        return f"process {proc.pid}: {proc.command}"
    return f"{proc.kind} (pid {proc.pid})"
