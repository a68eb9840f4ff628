"""An instance's branch, pushed, opened as a pull request and checked out by a person, end to end: a real
daemon, real tmux on a private socket, real git with a local bare repository as the remote, corral-sim as
the agent. The network is the only thing not real: `gh` is a stand-in script on the daemon's PATH that
records what it was asked and says logged in or not as the test decides."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, wait_status

env = api.env

STANDIN_GH = """#!/bin/sh
state="$CORRAL_TEST_GH_STATE"
echo "$*" >> "$state/calls"
case "$1 $2" in
  "auth status")
    if [ -e "$state/logged-out" ]; then
      echo "You are not logged into any GitHub hosts. To log in, run: gh auth login" >&2
      exit 1
    fi
    echo "github.com: Logged in to github.com account tester"
    exit 0;;
  "pr create")
    shift 2
    for arg in "$@"; do printf '%s\\n' "$arg"; done > "$state/pr-args"
    echo "Creating pull request for corral/scribe into main"
    echo "https://github.com/example/proj/pull/7"
    exit 0;;
esac
echo "stand-in gh: unexpected $*" >&2
exit 2
"""


def path_without_gh() -> str:
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "gh").exists())


@pytest.fixture
def remote(git_repo: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, timeout=30)
    git(git_repo, "remote", "add", "origin", str(bare))
    git(git_repo, "push", "-q", "origin", "main")
    return bare


def remote_head(bare: Path, branch: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(bare), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip()


def start_with_work(env: Env, repo: Path) -> Path:
    ok(repo, "instance", "start", "scribe", "--program", SIM, "--prompt", "/echo Write the notes file")
    wt = Path(wait_status(env, repo, "scribe", "ready")["worktree"])
    (wt / "notes.txt").write_text("the agent's notes\n")
    git(wt, "add", "notes.txt")
    git(wt, "commit", "-q", "-m", "notes")
    return wt


def test_push_sends_the_branch_to_its_remote_and_says_what_stayed_behind(
    env: Env, git_repo: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_without_gh())
    wt = start_with_work(env, git_repo)
    base = f"/v1/repos/{git_repo.name}/instances"

    pushed = env.client.call("POST", f"{base}/scribe/push", timeout=60)
    head = git(wt, "rev-parse", "HEAD").strip()
    assert (pushed["branch"], pushed["remote"], pushed["commit"]) == ("corral/scribe", "origin", head)
    assert pushed["uncommitted"] is False and remote_head(remote, "corral/scribe") == head

    (wt / "notes.txt").write_text("changed, not committed\n")
    again = env.client.call("POST", f"{base}/scri/push", json={"remote": "origin"}, timeout=60)
    assert again["uncommitted"] is True and again["commit"] == head

    status, body = env.client.request("POST", f"{base}/scribe/push", json={"remote": "upstream"}, timeout=60)
    assert status == 404 and "no remote 'upstream'" in body["error"] and "git remote add" in body["error"]
    status, body = env.client.request("POST", f"{base}/scribe/push", json={"remote": "--mirror"}, timeout=60)
    assert status == 400 and "remote must be the name" in body["error"]
    status, body = env.client.request("POST", f"{base}/scribe/push", json={"remtoe": "x"}, timeout=60)
    assert status == 400 and "remtoe" in body["error"]

    ok(git_repo, "instance", "start", "inplace", "--program", SIM, "--worktree", "none")
    status, body = env.client.request("POST", f"{base}/inplace/push", timeout=60)
    assert status == 409 and "no branch of its own" in body["error"]


def test_a_pull_request_needs_gh_logged_in_and_is_opened_with_the_instance_s_prompt(
    env: Env, git_repo: Path, remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, state = tmp_path / "bin", tmp_path / "gh-state"
    bin_dir.mkdir()
    state.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(STANDIN_GH)
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{path_without_gh()}")
    monkeypatch.setenv("CORRAL_TEST_GH_STATE", str(state))
    wt = start_with_work(env, git_repo)
    base = f"/v1/repos/{git_repo.name}/instances"

    (state / "logged-out").touch()
    status, body = env.client.request("POST", f"{base}/scribe/pr", timeout=60)
    assert status == 424 and "gh is not logged in" in body["error"] and "gh auth login" in body["error"]
    assert remote_head(remote, "corral/scribe") == ""  # nothing was pushed

    (state / "logged-out").unlink()
    opened = env.client.call("POST", f"{base}/scribe/pr", json={"draft": True}, timeout=60)
    assert opened["url"] == "https://github.com/example/proj/pull/7" and opened["pr_title"] == "scribe"
    assert opened["commit"] == git(wt, "rev-parse", "HEAD").strip() == remote_head(remote, "corral/scribe")
    args = (state / "pr-args").read_text().split("\n")
    assert args[args.index("--head") + 1] == "corral/scribe" and args[args.index("--title") + 1] == "scribe"
    body_text = "\n".join(args[args.index("--body") + 1 :])
    assert (
        "/echo Write the notes file" in body_text and "Opened by corral from instance `scribe`" in body_text
    )
    assert "--draft" in args

    custom = {"title": "Notes, at last", "body": "Adds the notes.", "base": "main"}
    env.client.call("POST", f"{base}/scribe/pr", json=custom, timeout=60)
    args = (state / "pr-args").read_text().split("\n")
    assert args[args.index("--title") + 1] == "Notes, at last" and args[args.index("--base") + 1] == "main"
    assert args[args.index("--body") + 1] == "Adds the notes."


def test_without_gh_a_pull_request_says_how_to_get_it(
    env: Env, git_repo: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_without_gh())
    assert shutil.which("gh") is None
    start_with_work(env, git_repo)
    status, body = env.client.request("POST", f"/v1/repos/{git_repo.name}/instances/scribe/pr", timeout=60)
    assert status == 424 and "gh is not installed" in body["error"] and "cli.github.com" in body["error"]
    assert remote_head(remote, "corral/scribe") == ""


def test_checkout_pauses_the_agent_and_gives_the_commands_that_put_its_branch_in_front_of_a_person(
    env: Env, git_repo: Path
) -> None:
    wt = start_with_work(env, git_repo)
    base = f"/v1/repos/{git_repo.name}/instances"
    checkout = env.client.call("POST", f"{base}/scribe/checkout", timeout=90)
    assert checkout["paused"] is True and checkout["branch"] == "corral/scribe"
    assert checkout["commands"] == [f"cd {git_repo}", "git switch corral/scribe"]
    assert checkout["resume"] == "git switch - && corral instance resume scribe"
    assert wait_status(env, git_repo, "scribe", "paused")["status"] == "paused" and not wt.exists()

    git(git_repo, "switch", "-q", "corral/scribe")  # what the person runs
    assert (git_repo / "notes.txt").read_text() == "the agent's notes\n"
    again = env.client.call("POST", f"{base}/scribe/checkout", timeout=90)
    assert again["paused"] is False and again["commands"] == checkout["commands"]
    git(git_repo, "switch", "-q", "-")
    ok(git_repo, "instance", "resume", "scribe")
    wait_status(env, git_repo, "scribe", "ready")
    status, body = env.client.request("POST", f"{base}/scribe/checkout", json={"now": 1}, timeout=60)
    assert status == 400 and "now" in body["error"]
