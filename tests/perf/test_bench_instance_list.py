"""Listing the instances of a project with 50 live agents (issue 9: "today `corral instance list` with 50
agents takes about 0.9 s … Lists are answered from state the daemon keeps up to date"). Printed table, no
timing asserts (make bench: pytest -q -s -p no:randomly tests/perf).

A real daemon on a private runtime directory, tmux socket and CORRAL_HOME (the `env` fixture of
tests/integration/test_instances_api.py), a real git repository, 50 corral-sim agents in tmux (worktree
"none": the bench is about the list, not worktrees). Once all 50 are ready we measure, LISTINGS times each:

- idle: `GET /v1/repos/{project}/instances` over the daemon's Unix socket (what the dashboard polls);
- working: the same while all 50 agents work (a spinner: output all the time, so every Instance is busy
  capturing its screen and deciding its status — a live fleet, as a person watches it);
- starting: the same while the project starts STARTING more agents (its Project's thread is busy);
- cli: `corral instance list --json` as a person runs it (process start-up included).

Correctness is asserted (50 rows, each with its status and metrics), timings never.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_instances_api as api
from tests.integration.cli_kit import CORRAL
from tests.integration.test_instances_api import SIM, Env
from tests.perf.report import median, percentile, print_table
from tests.unit.actor_kit import wait_until

pytestmark = [pytest.mark.bench, pytest.mark.timeout(900)]

env = api.env

AGENTS = 50
STARTING = 10
LISTINGS = int(os.environ.get("CORRAL_BENCH_LIST_RUNS", "40"))
CLI_RUNS = 10


def listing(env: Env, project: str) -> list[dict[str, Any]]:
    status, body = env.client.request("GET", f"/v1/repos/{project}/instances", timeout=30)
    assert status == 200 and isinstance(body, list), body
    return body


def all_ready(env: Env, project: str) -> list[dict[str, Any]] | None:
    views = listing(env, project)
    return views if len(views) == AGENTS and all(v["status"] == "ready" for v in views) else None


def timed(fn: Any, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def ms(values: list[float]) -> str:
    return f"{median(values) * 1000:.1f} ms (p90 {percentile(values, 90) * 1000:.1f})"


def test_listing_50_agents(env: Env, git_repo: Path) -> None:
    env.client.ensure_running()
    env.client.call("POST", "/v1/repos", json={"path": str(git_repo)})
    project = git_repo.name
    for i in range(AGENTS):
        body = {"title": f"agent-{i:02d}", "program": SIM, "mode": "tmux", "worktree": "none"}
        env.client.call("POST", f"/v1/repos/{project}/instances", json=body, timeout=70)
    views = wait_until(lambda: all_ready(env, project), 180, f"{AGENTS} agents to be ready")
    assert all(v["metrics"] and v["metrics"]["pid"] for v in views), views

    api_idle = timed(lambda: listing(env, project), LISTINGS)

    for i in range(AGENTS):
        work = {"text": "/sleep 600"}  # a spinner: output all the time
        env.client.call("POST", f"/v1/repos/{project}/instances/agent-{i:02d}/send", json=work)
    wait_until(
        lambda: all(v["status"] == "running" for v in listing(env, project)), 60, "all agents to be working"
    )
    api_working = timed(lambda: listing(env, project), LISTINGS)

    def start_more() -> None:
        for i in range(STARTING):
            body = {"title": f"more-{i:02d}", "program": SIM, "mode": "tmux", "worktree": "none"}
            env.client.call("POST", f"/v1/repos/{project}/instances", json=body, timeout=70)

    starter = threading.Thread(target=start_more)
    starter.start()
    api_starting = []
    while starter.is_alive():
        api_starting += timed(lambda: listing(env, project), 1)
    starter.join()

    def cli() -> None:
        out = subprocess.run(
            [CORRAL, "instance", "list", "--json"],
            cwd=git_repo,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr

    cli_runs = timed(cli, CLI_RUNS)
    print_table(
        f"instance list, {AGENTS} agents in tmux (medians; the machine is shared and noisy)",
        [
            (f"GET …/instances, idle fleet (x{LISTINGS})", ms(api_idle), "a few ms", None),
            (f"GET …/instances, all working (x{LISTINGS})", ms(api_working), "a few ms", None),
            (
                f"GET …/instances, {STARTING} starting (x{len(api_starting)})",
                ms(api_starting),
                "a few ms",
                None,
            ),
            (f"corral instance list --json (x{CLI_RUNS})", ms(cli_runs), "", None),
        ],
    )
