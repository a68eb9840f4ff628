"""`GET /v1/tree`: the supervision tree as a view, live — a real daemon, real tmux on a private socket, a real
git repository, corral-sim as an agent that crashes once and is restarted by its Instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, wait_status
from tests.unit.actor_kit import wait_until

env = api.env


def child(node: dict[str, Any], child_id: str) -> dict[str, Any]:
    found = [c for c in node["children"] if c["id"] == child_id]
    assert found, f"{child_id} not under {node['path']}: {[c['id'] for c in node['children']]}"
    return found[0]


def test_the_tree_shows_every_supervisor_and_child_with_its_restarts_and_last_exit(
    env: Env, git_repo: Path
) -> None:
    ok(git_repo, "instance", "start", "edits", "--program", SIM, "--worktree", "none")
    wait_status(env, git_repo, "edits", "ready")
    ok(git_repo, "instance", "send", "edits", "/crash 3")

    def runtime_restarted() -> dict[str, Any] | None:
        tree = env.client.call("GET", "/v1/tree", timeout=30)
        project = child(child(tree, "projects"), f"project:{git_repo.name}")
        runtime = child(child(project, "edits"), "runtime")
        return tree if runtime["restarts"] == 1 and runtime["state"] == "running" else None

    tree = wait_until(runtime_restarted, 60, "the crashed agent's runtime to be restarted")
    assert (tree["id"], tree["path"], tree["kind"], tree["state"]) == (
        "root",
        "root",
        "supervisor",
        "running",
    )
    assert tree["strategy"] == "one_for_one" and tree["max_restarts"] == 3 and tree["error"] == ""
    assert {"eventbus", "signals", "audit", "projects"} <= {c["id"] for c in tree["children"]}
    assert child(tree, "eventbus")["kind"] == "worker" and child(tree, "eventbus")["children"] == []
    project = child(child(tree, "projects"), f"project:{git_repo.name}")
    assert project["path"] == f"root/projects/project:{git_repo.name}" and project["kind"] == "supervisor"
    instance = child(project, "edits")
    assert (instance["kind"], instance["restart"], instance["restarts"]) == ("supervisor", "transient", 0)
    assert (instance["restarts_in_window"], instance["max_restarts"]) == (1, 3)  # its intensity, used 1/3
    assert instance["total_restarts"] == 1 and instance["period_s"] == 60.0
    runtime = child(instance, "runtime")
    assert runtime["generation"] == 2 and "exit status 3" in runtime["last_exit"]
    assert runtime["backoff_due_s"] is None and runtime["kind"] == "worker"

    ok(git_repo, "instance", "kill", "edits")
    wait_status(env, git_repo, "edits", "exited")
    after = env.client.call("GET", "/v1/tree", timeout=30)
    ended = child(child(child(after, "projects"), f"project:{git_repo.name}"), "edits")
    assert ended["state"] == "stopped" and ended["last_exit"].startswith("normal")
    assert ended["children"] == []  # an ended Instance holds nothing
