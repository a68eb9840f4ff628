"""`POST …/instances/{title}/answer`: a person's "y" (or "n") to the prompt on an agent's screen, sent as the
keys the harness gives for it — a real daemon, real tmux on a private socket, corral-sim as the agent."""

from __future__ import annotations

from pathlib import Path

from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, wait_status
from tests.unit.actor_kit import wait_until

env = api.env


def test_yes_and_no_answer_a_permission_prompt_with_the_harness_s_own_keys(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "editor", "--program", SIM, "--prompt", "/edit a.txt hi")
    waiting = wait_status(env, git_repo, "editor", "waiting")
    assert "permission" in waiting["reason"]
    wt = Path(waiting["worktree"])
    base = f"/v1/repos/{git_repo.name}/instances"

    answered = env.client.call("POST", f"{base}/editor/answer", timeout=60)  # yes by default
    assert answered["title"] == "editor"
    wait_until(lambda: (wt / "a.txt").exists(), 30, "the edit the answer allowed")
    wait_status(env, git_repo, "editor", "ready")
    status, body = env.client.request("POST", f"{base}/editor/answer", json={"answer": "yes"}, timeout=60)
    assert status == 409 and "shows no question or permission prompt" in body["error"]

    ok(git_repo, "instance", "send", "editor", "/edit b.txt no thanks")
    wait_status(env, git_repo, "editor", "waiting")
    env.client.call("POST", f"{base}/editor/answer", json={"answer": "no"}, timeout=60)
    wait_status(env, git_repo, "editor", "ready")
    assert not (wt / "b.txt").exists()
    status, body = env.client.request("POST", f"{base}/editor/answer", json={"answer": "maybe"}, timeout=60)
    assert status == 400 and "answer" in body["error"]
