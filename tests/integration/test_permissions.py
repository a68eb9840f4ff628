"""`auto_yes` and the permission policy (issue 8 §3): with `auto_yes = true` corral answers an agent's
permission prompt as `permissions` and `allow` say, per role. A real daemon process, tmux on a private
socket, a real git repository, corral-sim asking before every edit; the config is re-read at each start."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, wait_status
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _configure(repo: Path, text: str) -> None:
    (repo / ".corral").mkdir(exist_ok=True)
    (repo / ".corral" / "config.toml").write_text(text)


def _start(repo: Path, title: str, prompt: str, *flags: str) -> Path:
    """Start the sim on `prompt`; its worktree."""
    out = ok(repo, "instance", "start", title, "--program", SIM, "--prompt", prompt, "--json", *flags)
    return Path(json.loads(out)["worktree"])


def _screen(repo: Path, title: str) -> str:
    return ok(repo, "instance", "capture", title, "--all")


def test_auto_yes_answers_permission_prompts_as_the_roles_policy_says(env: Env, git_repo: Path) -> None:
    # auto_yes alone: every permission prompt is accepted (the default policy with auto-yes is allow_all)
    _configure(git_repo, "auto_yes = true\n")
    worktree = _start(git_repo, "trusted", "/edit a.txt yes")
    wait_until(lambda: (worktree / "a.txt").exists(), 30, "the edit auto-yes allowed")
    assert (worktree / "a.txt").read_text().strip() == "yes"
    wait_status(env, git_repo, "trusted", "ready")

    # permissions = "ask": the prompt is left to a person, and nothing is written meanwhile
    _configure(git_repo, 'auto_yes = true\npermissions = "ask"\n')
    worktree = _start(git_repo, "asking", "/edit a.txt later")
    waiting = wait_status(env, git_repo, "asking", "waiting")
    assert "edit to a.txt" in waiting["reason"], waiting["reason"]
    assert not (worktree / "a.txt").exists()
    ok(git_repo, "instance", "send-keys", "asking", "1")  # a person answers
    wait_until(lambda: (worktree / "a.txt").exists(), 30, "the edit a person allowed")

    # permissions = "deny_all": refused, the agent is told no and goes on without it
    _configure(git_repo, 'auto_yes = true\npermissions = "deny_all"\n')
    worktree = _start(git_repo, "refused", "/edit a.txt never")
    wait_until(lambda: "User rejected the edit to a.txt" in _screen(git_repo, "refused"), 30, "the refusal")
    wait_status(env, git_repo, "refused", "ready")
    assert not (worktree / "a.txt").exists()

    # a role's allow regex: its edits to a.txt are accepted, everything else is refused by the policy
    _configure(
        git_repo,
        "auto_yes = true\npermissions = \"deny_all\"\n[agents.coder]\nallow = ['edit to a\\.txt']\n",
    )
    worktree = _start(git_repo, "coder", "/edit a.txt allowed\n/edit b.txt refused", "--agent-type", "coder")
    wait_until(lambda: "User rejected the edit to b.txt" in _screen(git_repo, "coder"), 30, "the refusal")
    assert (worktree / "a.txt").read_text().strip() == "allowed"
    assert not (worktree / "b.txt").exists()
    # … and the same prompt from an agent of no role gets the top-level policy: refused
    worktree = _start(git_repo, "roleless", "/edit a.txt refused")
    wait_until(lambda: "User rejected the edit to a.txt" in _screen(git_repo, "roleless"), 30, "the refusal")
    assert not (worktree / "a.txt").exists()
