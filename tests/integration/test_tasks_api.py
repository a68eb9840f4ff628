"""Tasks, signals and the audit log through the control API of a real daemon process, with no `corral task`
or `corral signal` command: a task created and moved by the API is carried through its lifecycle by the
daemon (corral-sim in every role, tmux on a private socket); a signal sent through the API is applied by the
daemon's claimer; the audit log reads it back; mistakes are 4xx with their messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_instances_api as api
from tests.integration.test_daemon import start
from tests.integration.test_instances_api import SIM, Env
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped

PLAN = """# Typo

## Wave 1: Fix

### Task 1: Fix the typo

Fix the typo in the README.
"""


def _serve(env: Env, repo: Path) -> str:
    """Start the daemon and register `repo` through the API; the project's base path."""
    start(env.client)
    status, project = env.client.request("POST", "/v1/repos", json={"path": str(repo)})
    assert status == 201, project
    return f"/v1/repos/{project['name']}"


def _sim_in_every_role(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """corral-sim plays every agent and never asks permission (set in the daemon's environment)."""
    config = repo / ".corral" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f'default_program = "{SIM}"\n')
    monkeypatch.setenv("CORRAL_SIM_AUTO_APPROVE", "1")


def test_a_task_created_and_moved_through_the_api_is_carried_to_done_by_the_daemon(
    env: Env, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sim_in_every_role(git_repo, monkeypatch)
    base = _serve(env, git_repo)
    call = env.client.call

    created = call("POST", f"{base}/tasks", json={"name": "t", "content": PLAN})
    assert (created["name"], created["title"], created["status"]) == ("t", "Typo", "ready")
    moved = call("POST", f"{base}/tasks/t/transition", json={"event": "implement_start"})
    assert moved["transition"]["from_status"] == "ready" and moved["task"]["status"] == "implementing"

    def status() -> str:
        return call("GET", f"{base}/tasks/t")["status"]

    wait_until(lambda: status() == "done", 60, "task t to be done (coder, reviewer, readiness)")
    shown = call("GET", f"{base}/tasks/t")
    assert shown["wave_tasks"] == [] and shown["done_at"]  # a one-task plan goes to one coder, not waves
    assert [t["name"] for t in call("GET", f"{base}/tasks?status=done")] == ["t"]

    moves = [r["message"] for r in reversed(call("GET", f"{base}/audit?task=t")) if r["kind"] == "transition"]
    assert moves == [
        "t: ready → implementing (implement_start, by user)",
        "t: implementing → reviewing (implement_finished, by agent)",
        "t: reviewing → verifying (review_approved, by agent)",
        "t: verifying → done (verify_approved, by agent)",
    ]
    signals = call("GET", f"{base}/signals?task=t")
    assert [(s["signal_type"], s["status"], s["source"]) for s in signals] == [
        ("verify_approved", "done", "agent"),
        ("review_approved", "done", "agent"),
        ("implement_finished", "done", "agent"),
    ]
    rows = reversed(call("GET", f"{base}/audit?task=t&limit=1000"))
    started = [r["message"].split()[2] for r in rows if r["kind"] == "task_agent_started"]
    assert started == ["t-coder", "t-review-1", "t-verify-1"]  # the agents the outbox items started


def test_a_signal_sent_through_the_api_is_applied_by_the_daemon_and_audited(env: Env, git_repo: Path) -> None:
    base = _serve(env, git_repo)
    call = env.client.call
    call("POST", f"{base}/tasks", json={"name": "fix-login"})

    # cancel is user-only: an agent could not send it, the person at a UI can
    status, sent = env.client.request(
        "POST", f"{base}/signals", json={"task": "fix-login", "signal_type": "cancel"}
    )
    assert status == 202 and (sent["status"], sent["source"]) == ("pending", "user")

    def signal(signal_id: int) -> dict[str, Any] | None:
        found = [s for s in call("GET", f"{base}/signals") if s["id"] == signal_id]
        return found[0] if found and found[0]["status"] != "pending" else None

    applied = wait_until(lambda: signal(sent["id"]), 20, "the signal to be applied")
    assert (applied["status"], applied["result"]) == ("done", "ready → cancelled")
    assert call("GET", f"{base}/tasks/fix-login")["status"] == "cancelled"
    assert call("GET", f"{base}/tasks") == []  # cancelled tasks are hidden …
    assert [t["name"] for t in call("GET", f"{base}/tasks?all=1")] == ["fix-login"]  # … unless asked for

    late = call("POST", f"{base}/signals", json={"task": "fix-login", "signal_type": "plan_start"})
    refused = wait_until(lambda: signal(late["id"]), 20, "the second signal to be settled")
    assert refused["status"] == "failed"
    assert refused["result"].startswith(
        'invalid transition: event "plan_start" does not apply to a task in status'
    )
    assert [s["id"] for s in call("GET", f"{base}/signals?status=failed")] == [late["id"]]

    rows = call("GET", f"{base}/audit?task=fix-login")
    assert [(r["kind"], r["signal_id"]) for r in rows] == [
        ("signal_failed", late["id"]),
        ("transition", sent["id"]),
        ("task_created", None),
    ]
    assert rows[1]["message"] == "fix-login: ready → cancelled (cancel, by user)"
    assert [r["kind"] for r in call("GET", f"{base}/audit?task=fix-login&level=warn")] == ["signal_failed"]


def test_mistakes_are_4xx_naming_what_exists_and_what_is_allowed(env: Env, git_repo: Path) -> None:
    base = _serve(env, git_repo)
    request = env.client.request
    assert request("GET", "/v1/repos/nope/tasks") == (
        404,
        {"error": f'no project named "nope" (projects: {git_repo.name})', "detail": ""},
    )
    assert request("POST", f"{base}/tasks", json={"name": "fix-login"})[0] == 201
    assert request("POST", f"{base}/tasks", json={"name": "fix-login"}) == (
        409,
        {"error": f'a task named "fix-login" already exists in project {git_repo.name}', "detail": ""},
    )
    assert request("GET", f"{base}/tasks/fix-logn") == (
        404,
        {"error": f'no task named "fix-logn" in project {git_repo.name} (tasks: fix-login)', "detail": ""},
    )
    status, body = request("POST", f"{base}/tasks/fix-login/transition", json={"event": "implement_finished"})
    assert (status, body["error"]) == (
        409,
        'invalid transition: event "implement_finished" does not apply to a task in status "ready" '
        "(allowed: plan_start, implement_start, cancel)",
    )
    status, body = request("POST", f"{base}/tasks/fix-login/transition", json={"event": "go"})
    assert status == 400 and body["error"].startswith('unknown event "go"; events are: ')
    status, body = request("POST", f"{base}/signals", json={"task": "fix-login", "signal_type": "done"})
    assert status == 400 and body["error"].startswith('unknown signal type "done"; signal types are: ')
    status, body = request("GET", f"{base}/tasks?status=finished")
    assert status == 400 and body["error"].startswith('unknown status "finished"; statuses are: ready, ')
    status, body = request("DELETE", f"{base}/tasks/fix-login")
    assert status == 405 and body["error"].endswith("does not take DELETE (it takes GET, HEAD)")
    assert request("GET", f"{base}/signals") == (200, [])  # nothing was sent by the mistakes
