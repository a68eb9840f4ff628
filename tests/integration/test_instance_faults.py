"""Instances through a real daemon (started by the CLI), real tmux on a private socket, a real git repository
and corral-sim as the agent: a missing program behind the nice wrapper, restart of a paused instance, what
`kill` prints, the resources a killed instance gives back, and how an agent killed by SIGKILL is recorded."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import corral, ok
from tests.integration.test_instances_api import Env

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _interactive_profile(repo: Path) -> None:
    config = repo / ".corral" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('[resources]\nprofile = "interactive"\n')


def test_a_missing_program_is_refused_up_front_also_behind_the_nice_wrapper(env: Env, git_repo: Path) -> None:
    _interactive_profile(git_repo)
    for program in ("no-such-agent-program", "/no/such/agent"):
        result = corral(git_repo, "instance", "start", "ghost", "--program", program)
        assert result.returncode != 0 and result.stdout == "", result.stdout
        assert "Traceback" not in result.stderr
        assert program in result.stderr and (
            "not found on PATH" in result.stderr or "not an executable" in result.stderr
        )
    assert ok(git_repo, "instance", "list") == "no instances in project proj\n"
    assert "corral/ghost" not in git(git_repo, "branch", "--list")  # refused before a worktree was made
    assert not (git_repo / ".worktrees").exists() or not any((git_repo / ".worktrees").iterdir())
