"""The instance list is answered from the board the Projects keep (actors/board.py), not by asking: a real
daemon, real tmux on a private socket, a real git repository with a real hook, corral-sim as the agent."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, wait_status
from tests.unit.actor_kit import wait_until

env = api.env

GATE_S = 60  # the hook stops waiting for its gate after this long (a failed test leaves no git behind)


def gated_checkout(repo: Path) -> tuple[Path, Path]:
    """A post-checkout hook (git runs it when corral adds a worktree) that says it entered and then waits
    for a gate: while it waits, the Project that makes the worktree is busy. → (entered, gate)."""
    entered, gate = repo.parent / "hook-entered", repo.parent / "hook-gate"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(
        "#!/bin/sh\n"
        f"touch '{entered}'\n"
        f"i=0; while [ ! -e '{gate}' ] && [ $i -lt {GATE_S * 10} ]; do sleep 0.1; i=$((i+1)); done\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    return entered, gate


def test_the_list_answers_while_the_project_is_busy_starting_an_agent(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "steady", "--program", SIM, "--worktree", "none")
    wait_status(env, git_repo, "steady", "ready")
    entered, gate = gated_checkout(git_repo)
    base = f"/v1/repos/{git_repo.name}/instances"
    started: dict[str, Any] = {}

    def start_gated() -> None:
        started["answer"] = env.client.request(
            "POST", base, json={"title": "gated", "program": SIM}, timeout=90
        )

    starter = threading.Thread(target=start_gated)
    starter.start()
    try:
        wait_until(entered.exists, 30, "the worktree's hook to run")
        status, listed = env.client.request("GET", base, timeout=30)
        assert status == 200, listed
        assert starter.is_alive()  # the Project is still making the worktree: it was not asked
        assert [(v["title"], v["status"]) for v in listed] == [("steady", "ready")]
        assert listed[0]["metrics"]["pid"] and listed[0]["attach"]["kind"] == "tmux"
        cli = json.loads(ok(git_repo, "instance", "list", "--json"))
        assert [v["title"] for v in cli] == ["steady"]
        tree = env.client.call("GET", "/v1/tree", timeout=30)  # the tree view is not held up either
        (projects,) = [c for c in tree["children"] if c["id"] == "projects"]
        (busy,) = [c for c in projects["children"] if c["id"] == f"project:{git_repo.name}"]
        assert "did not answer within" in busy["error"] and busy["children"] == []
        assert starter.is_alive()
    finally:
        gate.touch()
        starter.join(90)
    assert started["answer"][0] == 201, started["answer"]
    wait_status(env, git_repo, "gated", "ready")
    listed = env.client.call("GET", base, timeout=30)
    assert [(v["title"], v["status"]) for v in listed] == [("steady", "ready"), ("gated", "ready")]


def test_the_list_follows_every_change_an_agent_goes_through(env: Env, git_repo: Path) -> None:
    """Status, reason, age, restarts, pid and uptime as the board has them, through a permission prompt, a
    crash and its restart, a pause and a kill: each change is listed, none of them is asked for."""
    ok(git_repo, "instance", "start", "edits", "--program", SIM, "--prompt", "/edit a.txt hi")
    base = f"/v1/repos/{git_repo.name}/instances"

    def listed(status: str) -> dict[str, Any] | None:
        views = env.client.call("GET", base, timeout=30)
        return views[0] if views and views[0]["status"] == status else None

    waiting = wait_until(lambda: listed("waiting"), 30, "the question to be listed")
    assert "permission" in waiting["reason"]
    first_pid = waiting["metrics"]["pid"]
    time.sleep(0.05)  # the age is measured on the daemon's clock: let it move
    later = env.client.call("GET", base, timeout=30)[0]
    assert later["status_age_s"] > waiting["status_age_s"]  # the age is computed when listed, not posted
    assert later["metrics"]["uptime_s"] > waiting["metrics"]["uptime_s"]

    ok(git_repo, "instance", "send-keys", "edits", "1")
    wait_until(lambda: listed("ready"), 30, "the answered agent to be listed ready")
    ok(git_repo, "instance", "send", "edits", "/crash 3")
    restarted = wait_until(
        lambda: (v := listed("ready")) and v["restarts"] == 1 and v, 60, "the crashed agent to be back"
    )
    assert restarted["metrics"]["pid"] != first_pid

    ok(git_repo, "instance", "pause", "edits")
    paused = wait_until(lambda: listed("paused"), 30, "the pause to be listed")
    assert paused["reason"].startswith("paused") and paused["metrics"] is None and paused["attach"] is None
    ok(git_repo, "instance", "kill", "edits")
    exited = wait_until(lambda: listed("exited"), 30, "the kill to be listed")
    assert exited["reason"].startswith("killed by request")
