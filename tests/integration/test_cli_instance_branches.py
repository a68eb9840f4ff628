"""`corral instance diff|push|pr|checkout|rename|answer` as a person runs them: the real CLI, a real daemon,
real tmux on a private socket, real git with a local bare remote, corral-sim as the agent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import fails, ok
from tests.integration.test_instance_branches import path_without_gh
from tests.integration.test_instances_api import SIM, Env, wait_status

env = api.env


def test_the_branch_commands_reach_what_the_dashboard_does(
    env: Env, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_without_gh())
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, timeout=30)
    git(git_repo, "remote", "add", "origin", str(bare))
    ok(git_repo, "instance", "start", "scribe", "--program", SIM, "--prompt", "/edit a.txt hi")
    wt = Path(wait_status(env, git_repo, "scribe", "waiting")["worktree"])

    assert ok(git_repo, "instance", "answer", "scribe").startswith("answered yes to scribe: ")
    wait_status(env, git_repo, "scribe", "ready")
    assert (wt / "a.txt").exists()
    assert "shows no question or permission prompt" in fails(
        git_repo, 1, "instance", "answer", "scribe", "no"
    )

    (wt / "b.txt").write_text("more\n")
    shown = ok(git_repo, "instance", "diff", "scribe")
    assert "a.txt" in shown and "b.txt | 1 + (untracked)" in shown and "+hi" in shown and "+more" in shown
    assert "+hi" not in ok(git_repo, "instance", "diff", "scribe", "--stat")
    as_json = json.loads(ok(git_repo, "instance", "diff", "scribe", "--json"))
    assert as_json["branch"] == "corral/scribe" and as_json["truncated"] is False

    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "work")
    head = git(wt, "rev-parse", "HEAD").strip()
    assert ok(git_repo, "instance", "push", "scribe") == f"pushed corral/scribe ({head[:7]}) to origin\n"
    assert "no remote 'fork'" in fails(git_repo, 1, "instance", "push", "scribe", "--remote", "fork")
    assert "gh is not installed" in fails(git_repo, 1, "instance", "pr", "scribe")

    out = ok(git_repo, "instance", "checkout", "scribe").splitlines()
    assert out == [
        "scribe is paused; to check out corral/scribe:",
        f"  cd {git_repo}",
        "  git switch corral/scribe",
        "to give it back to the agent afterwards:",
        "  git switch - && corral instance resume scribe",
    ]
    assert ok(git_repo, "instance", "rename", "scribe", "writer") == "renamed scribe to writer: paused\n"
    assert "writer" in ok(git_repo, "instance", "list")
    for verb in ("diff", "push", "pr", "checkout", "rename", "answer"):
        assert "usage: corral instance" in ok(git_repo, "instance", verb, "--help")
    assert os.environ["PATH"] == path_without_gh()
