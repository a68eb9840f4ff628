"""`GET …/instances/{title}/diff`: an instance's changes against its base, end to end — a real daemon, real
tmux on a private socket, a real git repository and worktree, corral-sim as the agent."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, wait_status

env = api.env


def test_the_diff_shows_committed_uncommitted_and_untracked_work_without_colours(
    env: Env, git_repo: Path
) -> None:
    (git_repo / "notes.txt").write_text("one\ntwo\n")
    git(git_repo, "add", "notes.txt")
    git(git_repo, "commit", "-q", "-m", "notes")
    git(git_repo, "config", "color.ui", "always")  # a person's colours must not reach the pane
    git(git_repo, "config", "color.diff", "always")
    ok(git_repo, "instance", "start", "scribe", "--program", SIM)
    shown = wait_status(env, git_repo, "scribe", "ready")
    wt = Path(shown["worktree"])
    (wt / "committed.txt").write_text("made and committed\n")
    git(wt, "add", "committed.txt")
    git(wt, "commit", "-q", "-m", "the agent's commit")
    (wt / "notes.txt").write_text("one\nTWO\n")  # uncommitted
    (wt / "fresh.txt").write_text("untracked line\n")  # untracked
    (wt / "ignored.log").write_text("not shown\n")
    (wt / ".gitignore").write_text("*.log\n")

    base = f"/v1/repos/{git_repo.name}/instances"
    diff = env.client.call("GET", f"{base}/scri/diff", timeout=60)  # a prefix names it, as elsewhere
    assert (diff["project"], diff["title"], diff["branch"]) == (git_repo.name, "scribe", "corral/scribe")
    assert diff["base"] == git(git_repo, "rev-parse", "main").strip() and diff["worktree"] == str(wt)
    for name in ("committed.txt", "notes.txt", "fresh.txt", ".gitignore"):
        assert name in diff["stat"], (name, diff["stat"])
    assert "ignored.log" not in diff["stat"] and "not shown" not in diff["diff"]
    assert "+made and committed" in diff["diff"] and "-two\n+TWO" in diff["diff"]
    assert "+untracked line" in diff["diff"] and "\x1b[" not in diff["diff"] + diff["stat"]
    assert diff["truncated"] is False

    (wt / "huge.txt").write_text(
        "".join(f"line {i:07d} of a file bigger than the limit\n" for i in range(60_000))
    )
    cut = env.client.call("GET", f"{base}/scribe/diff", timeout=60)
    assert cut["truncated"] is True and "huge.txt" in cut["stat"]
    assert len(cut["diff"].encode()) <= cut["limit_bytes"] and cut["diff"].endswith("\n")
    (wt / "huge.txt").unlink()

    ok(git_repo, "instance", "pause", "scribe")  # the worktree goes; its work is committed on the branch
    paused = env.client.call("GET", f"{base}/scribe/diff", timeout=60)
    assert paused["worktree"] == "" and "+made and committed" in paused["diff"] and "+TWO" in paused["diff"]
    assert "+untracked line" in paused["diff"]  # the pause committed it


def test_diff_errors_name_what_is_wrong(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "inplace", "--program", SIM, "--worktree", "none")
    base = f"/v1/repos/{git_repo.name}/instances"
    status, body = env.client.request("GET", f"{base}/inplace/diff", timeout=60)
    assert status == 409 and "no worktree of its own" in body["error"], body
    status, body = env.client.request("GET", f"{base}/nobody/diff", timeout=60)
    assert status == 404 and 'no instance "nobody"' in body["error"], body
    status, body = env.client.request("GET", "/v1/repos/nowhere/instances/inplace/diff", timeout=60)
    assert status == 404 and "nowhere" in body["error"], body
