"""`POST …/instances/{title}/rename`, end to end: a real daemon, real tmux on a private socket, a real git
repository and worktree, corral-sim as the agent — the same agent goes on under the new title."""

from __future__ import annotations

from pathlib import Path

from actors.store import Store
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, view, wait_status
from tests.unit.actor_kit import wait_until

env = api.env


def test_a_renamed_tmux_agent_goes_on_under_its_new_title(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "first", "--program", SIM)
    before = wait_status(env, git_repo, "first", "ready")
    ok(git_repo, "instance", "start", "other", "--program", SIM, "--mode", "pty")
    base = f"/v1/repos/{git_repo.name}/instances"

    renamed = env.client.call("POST", f"{base}/fir/rename", json={"title": "second"}, timeout=90)
    assert renamed["title"] == "second" and renamed["session"] == before["session"]
    assert (renamed["branch"], renamed["worktree"]) == (before["branch"], before["worktree"])
    after = wait_status(env, git_repo, "second", "ready")
    assert after["metrics"]["pid"] == before["metrics"]["pid"]  # the same agent, adopted: not restarted
    titles = [v["title"] for v in env.client.call("GET", base, timeout=30)]
    assert sorted(titles) == ["other", "second"]
    assert env.client.request("GET", f"{base}/first", timeout=30)[0] == 404
    ok(git_repo, "instance", "send", "second", "/echo still the same agent")
    wait_until(
        lambda: "still the same agent" in ok(git_repo, "instance", "capture", "second"), 30, "the echo"
    )
    with Store.open() as store:
        assert sorted(r.title for r in store.list_instances(git_repo.name)) == ["other", "second"]

    status, body = env.client.request("POST", f"{base}/second/rename", json={"title": "other"}, timeout=60)
    assert status == 409 and 'instance "other" already exists' in body["error"]
    status, body = env.client.request("POST", f"{base}/second/rename", json={"title": "-dashed"}, timeout=60)
    assert status == 400 and "may not start with '-'" in body["error"]
    status, body = env.client.request("POST", f"{base}/second/rename", json={"name": "x"}, timeout=60)
    assert status == 400 and "name" in body["error"]
    status, body = env.client.request("POST", f"{base}/second/rename", json={"title": "second"}, timeout=60)
    assert status == 400 and "already called" in body["error"]

    ok(git_repo, "instance", "kill", "second")
    wait_status(env, git_repo, "second", "exited")
    ended = env.client.call("POST", f"{base}/second/rename", json={"title": "third"}, timeout=60)
    assert (ended["title"], ended["status"], ended["reason"]) == ("third", "exited", "killed by request")
    restarted = ok(git_repo, "instance", "restart", "third")
    assert restarted.startswith("restarted third")
    wait_status(env, git_repo, "third", "ready")


def test_a_renamed_pty_agent_continues_and_the_new_title_survives_a_daemon_restart(
    env: Env, git_repo: Path
) -> None:
    ok(git_repo, "instance", "start", "pty-one", "--program", SIM, "--mode", "pty")
    wait_status(env, git_repo, "pty-one", "ready")
    base = f"/v1/repos/{git_repo.name}/instances"
    env.client.call("POST", f"{base}/pty-one/rename", json={"title": "pty-two"}, timeout=90)
    wait_status(env, git_repo, "pty-two", "ready")
    assert "renamed from pty-one" in view(env, git_repo, "pty-two")["notes"]

    ok(git_repo, "daemon", "stop")
    listed = ok(git_repo, "instance", "list")  # starts the daemon again, which brings it back
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["pty-two"]
    assert "corral/pty-one" in listed  # the branch keeps its name


def test_a_paused_instance_renamed_stays_paused_and_resumes_under_its_new_title(
    env: Env, git_repo: Path
) -> None:
    ok(git_repo, "instance", "start", "napper", "--program", SIM)
    worktree = Path(wait_status(env, git_repo, "napper", "ready")["worktree"])
    ok(git_repo, "instance", "pause", "napper")
    base = f"/v1/repos/{git_repo.name}/instances"
    renamed = env.client.call("POST", f"{base}/napper/rename", json={"title": "woken"}, timeout=90)
    assert (renamed["title"], renamed["status"]) == ("woken", "paused") and not worktree.exists()
    assert ok(git_repo, "instance", "resume", "woken").startswith("resumed woken")
    wait_status(env, git_repo, "woken", "ready")
    assert worktree.is_dir()  # its worktree back where it was, under its old name
