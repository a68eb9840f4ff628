"""Telling a campaign's agents from their own children, with real processes: a stand-in agent named
corral-sim that forks and does not exec (as a git or `corral signal emit` child looks before its exec)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from frontends.cli.chaos_procs import campaign_processes

_AGENT = """\
import os, sys, time
if os.fork() == 0:
    time.sleep(30)  # the child: same command line and environment as its parent, until it would exec
    os._exit(0)
sys.stdout.write("forked\\n"); sys.stdout.flush()
time.sleep(30)
"""


def test_an_agent_forked_child_is_not_a_second_agent_and_other_homes_are_not_seen(tmp_path: Path) -> None:
    sim = tmp_path / "bin" / "corral-sim"
    sim.parent.mkdir()
    sim.write_text(_AGENT)
    home = tmp_path / "home"
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_INSTANCE_TITLE": "t-W1-T1", "CORRAL_TASK": "t"}
    agent = subprocess.Popen([sys.executable, str(sim)], env=env, stdout=subprocess.PIPE, text=True)
    elsewhere = subprocess.Popen([sys.executable, str(sim)], env={**env, "CORRAL_HOME": str(tmp_path / "x")})
    children: list[int] = []
    try:
        assert agent.stdout is not None and agent.stdout.readline() == "forked\n"
        procs = campaign_processes(home, "no-socket")
        children = [p.pid for p in procs if p.pid != agent.pid]
        agents = [p for p in procs if p.kind == "agent"]
        assert [(p.pid, p.title, p.task, p.in_tmux) for p in agents] == [(agent.pid, "t-W1-T1", "t", False)]
        assert [p.kind for p in procs if p.pid != agent.pid] == ["other"]  # its child, same argv and env
        assert all(p.pid != elsewhere.pid for p in procs)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        for process in (agent, elsewhere):
            process.kill()
            process.wait(timeout=10)
