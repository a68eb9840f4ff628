"""The dashboard's branch and clean-up keys end to end: the Diff tab, p (push to a local bare remote), P (a
pull request, with a stand-in `gh` on the daemon's PATH: the network is the only thing not real), k then D
(kill, delete), and T (the orphan browser: adopt a tmux session no instance owns). A real daemon, real git,
real tmux (corral's on a private socket; the dashboard's terminal on another), corral-sim as the agent."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git
from tests.integration.cli_kit import ok
from tests.integration.dashboard_kit import SIM, Dashboard, wait_for
from tests.integration.test_dashboard import env, select, sidebar, wait_status
from tests.integration.test_instance_branches import STANDIN_GH, path_without_gh, remote_head
from tests.integration.test_instances_api import Env

__all__ = ["env"]  # the fixture, shared with test_dashboard.py


def test_diff_push_pull_request_kill_and_delete(
    env: Env, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, timeout=30)
    git(git_repo, "remote", "add", "origin", str(bare))
    gh_state = tmp_path / "gh"
    gh_state.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(STANDIN_GH)
    (bin_dir / "gh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{path_without_gh()}")  # the daemon's PATH too
    monkeypatch.setenv("CORRAL_TEST_GH_STATE", str(gh_state))

    ok(git_repo, "instance", "start", "scribe", "--program", SIM)
    worktree = Path(wait_status(env, git_repo, "scribe", "ready")["worktree"])
    (worktree / "notes.txt").write_text("the agent's notes\n")
    git(worktree, "add", "notes.txt")
    git(worktree, "commit", "-q", "-m", "notes")

    with Dashboard.open(git_repo) as dash:
        dash.wait_for("scribe")
        select(dash, "scribe")
        dash.keys("Tab")  # the Diff tab
        dash.wait_for("+the agent's notes", what="the commit's change in the Diff tab")
        assert "notes.txt" in dash.screen()

        dash.keys("p")
        dash.wait_for("pushed corral/scribe")
        assert remote_head(bare, "corral/scribe") == git(worktree, "rev-parse", "HEAD").strip()

        dash.keys("P")
        dash.wait_for("Create a pull request for scribe?")
        dash.keys("y")
        dash.wait_for("pull request created for scribe")
        pr_args = (gh_state / "pr-args").read_text().splitlines()
        assert pr_args[pr_args.index("--head") + 1] == "corral/scribe"

        dash.keys("k")
        dash.wait_for("Kill scribe?")
        dash.keys("y")
        wait_status(env, git_repo, "scribe", "exited")
        dash.wait_for(
            lambda s: any("□" in r for r in sidebar(s) if "scribe" in r) or None, 20, "scribe ended"
        )
        dash.keys("D")
        dash.wait_for("Delete scribe?")
        dash.keys("y")
        dash.wait_for("deleted scribe")
        dash.wait_for(lambda s: not any("scribe" in r for r in sidebar(s)) or None, 20, "the row gone")
    assert not worktree.exists()
    assert env.client.request("GET", f"/v1/repos/{git_repo.name}/instances/scribe")[0] == 404


def test_a_pull_request_without_gh_says_what_to_install(
    env: Env, git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, timeout=30)
    git(git_repo, "remote", "add", "origin", str(bare))
    monkeypatch.setenv("PATH", path_without_gh())
    ok(git_repo, "instance", "start", "scribe", "--program", SIM)
    wait_status(env, git_repo, "scribe", "ready")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("scribe")
        select(dash, "scribe")
        dash.keys("P")
        dash.wait_for("Create a pull request for scribe?")
        dash.keys("y")
        dash.wait_for("install the GitHub CLI", what="the toast saying gh is missing and what to do")
    assert remote_head(bare, "corral/scribe") == ""  # checked before anything was pushed


def test_an_orphan_tmux_session_is_adopted_from_the_tmux_browser(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "list")  # the daemon runs, and with it corral's (private) tmux server's owner
    tmux = ["tmux", "-L", env.tmux.socket]
    subprocess.run([*tmux, "new-session", "-d", "-s", "corral_proj_stray", "-c", str(git_repo), SIM],
                   check=True, timeout=10)  # fmt: skip
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("corral")
        dash.keys("T")
        dash.wait_for("corral_proj_stray", what="the orphan session in the tmux browser")
        dash.keys("a")
        dash.wait_for("Adopt corral_proj_stray")
        dash.keys("Enter")  # empty: the session's name without corral_proj_
        dash.wait_for("adopted corral_proj_stray")
        dash.wait_for(
            lambda s: any("stray" in r.split() for r in sidebar(s)) or None, 20, "stray in the sidebar"
        )
    view = wait_status(env, git_repo, "stray", "ready", "running", "waiting", "loading")
    assert view["session"] == "corral_proj_stray"
    wait_for(lambda: env.client.call("GET", "/v1/orphans") == [], 20, "no orphan left")
