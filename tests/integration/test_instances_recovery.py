"""Recovery (issue 4 §5): a restarted daemon brings back its agents from the store — tmux agents re-adopted
(the same pane, no second agent), sdk agents resumed in the same conversation — and lists, adopts and kills
the tmux sessions nobody claims. A real daemon process, tmux on a private socket, corral-sim as the agent."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from actors.runtimes.procinfo import read_stat
from actors.store import Store
from frontends.daemon.lock import pid_alive, read_pid
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.integration.test_instances_api import SIM, Env, view, wait_status
from tests.unit.actor_kit import wait_until

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def _pids(env: Env, repo: Path, *titles: str) -> dict[str, int]:
    return {t: view(env, repo, t)["metrics"]["pid"] for t in titles}


def _restart_daemon(env: Env, repo: Path, how: signal.Signals) -> None:
    pid = read_pid(env.client.paths.pid_file)
    assert pid is not None
    os.kill(pid, how)
    wait_until(lambda: not pid_alive(pid), 30, "the daemon to end")
    ok(repo, "instance", "list")  # starts a new daemon


def _listed_again(env: Env, repo: Path, *titles: str) -> None:
    def listed() -> bool:
        status, body = env.client.request("GET", f"/v1/repos/{repo.name}/instances", timeout=20)
        return status == 200 and sorted(v["title"] for v in body) == sorted(titles)

    wait_until(listed, 30, f"{', '.join(titles)} to be listed again")


def test_tmux_agents_are_readopted_after_kill_9_of_the_daemon(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "one", "--program", SIM)
    ok(git_repo, "instance", "start", "two", "--program", SIM)
    wait_status(env, git_repo, "one", "ready")
    wait_status(env, git_repo, "two", "ready")
    before = _pids(env, git_repo, "one", "two")

    _restart_daemon(env, git_repo, signal.SIGKILL)
    _listed_again(env, git_repo, "one", "two")
    for title in ("one", "two"):
        wait_status(env, git_repo, title, "ready")
    assert _pids(env, git_repo, "one", "two") == before  # adopted: the same agents, no second one
    assert len(env.tmux.list_sessions()) == 2
    with Store.open() as store:
        rows = {r.title: r for r in store.list_instances(git_repo.name)}
    assert {t: rows[t].pid for t in before} == before and rows["one"].status == "ready"
    assert json.loads(ok(git_repo, "instance", "orphans", "--json")) == []

    ok(git_repo, "instance", "send", "one", "/echo after the restart")
    wait_until(lambda: "after the restart" in ok(git_repo, "instance", "capture", "one"), 20, "the echo")
    ok(git_repo, "instance", "kill", "one")
    wait_status(env, git_repo, "one", "exited")
    with Store.open() as store:
        assert store.get_instance(git_repo.name, "one").status == "exited"


def test_an_sdk_agent_resumes_its_conversation_after_a_daemon_restart(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "talker", "--program", SIM, "--mode", "sdk", "--prompt", "/echo hi")
    wait_status(env, git_repo, "talker", "ready")

    def session_id() -> str | None:
        with Store.open() as store:
            return store.get_instance(git_repo.name, "talker").sdk_session_id or None

    conversation = wait_until(session_id, 20, "the conversation id to be recorded")
    first_pid = view(env, git_repo, "talker")["metrics"]["pid"]

    _restart_daemon(env, git_repo, signal.SIGTERM)
    _listed_again(env, git_repo, "talker")
    # claude's stream-json says nothing until it is spoken to: the next turn shows the same conversation
    resumed = wait_status(env, git_repo, "talker", "loading", "running", "ready")
    pid = resumed["metrics"]["pid"]
    assert pid != first_pid and not pid_alive(first_pid)  # a new process (sdk agents end with the daemon)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--resume" in argv and conversation.encode() in argv
    ok(git_repo, "instance", "send", "talker", "/echo again")
    wait_until(lambda: "again" in ok(git_repo, "instance", "capture", "talker", "--all"), 20, "the answer")
    wait_status(env, git_repo, "talker", "ready")
    assert session_id() == conversation


def test_an_orphan_session_is_listed_adopted_and_killed_leaving_no_process(env: Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "list")  # the daemon runs
    script = "sleep 1000 & exec sleep 1001"
    for name in ("corral_byhand_one", "corral_byhand_two"):
        env.tmux.run(["new-session", "-d", "-s", name, "-c", str(git_repo), "sh", "-c", script])

    def two_orphans() -> list[dict] | None:
        found = json.loads(ok(git_repo, "instance", "orphans", "--json"))
        return found if len(found) == 2 else None

    orphans = wait_until(two_orphans, 10, "two orphans")
    assert [o["session"] for o in orphans] == ["corral_byhand_one", "corral_byhand_two"]
    assert orphans[0]["cwd"] == str(git_repo) and orphans[0]["pid"] > 0
    assert orphans[0]["attach"][-1] == "=corral_byhand_one"
    assert "corral_byhand_one" in ok(git_repo, "instance", "orphans")
    pids = {o["session"]: o["pid"] for o in orphans}
    children = {name: [st.pid for st in _children(pid)] for name, pid in pids.items()}

    out = ok(git_repo, "instance", "adopt", "corral_byhand_one", "--title", "rescued")
    assert out.startswith("adopted corral_byhand_one as rescued (tmux, ")
    rescued = view(env, git_repo, "rescued")
    assert (
        rescued["session"] == "corral_byhand_one" and rescued["metrics"]["pid"] == pids["corral_byhand_one"]
    )
    assert [o["session"] for o in json.loads(ok(git_repo, "instance", "orphans", "--json"))] == [
        "corral_byhand_two"
    ]
    ok(git_repo, "instance", "kill", "rescued")
    wait_status(env, git_repo, "rescued", "exited")

    out = ok(git_repo, "instance", "kill", "--orphan", "corral_byhand_two")
    assert out.startswith("killed orphan session corral_byhand_two")
    assert env.tmux.list_sessions() == []
    for pid in [*pids.values(), *(p for ps in children.values() for p in ps)]:
        wait_until(lambda pid=pid: not pid_alive(pid) or _zombie(pid), 10, f"pid {pid} to end")


def _children(pid: int) -> list:
    from actors.runtimes.procinfo import tree

    return [st for st in tree(pid) if st.pid != pid]


def _zombie(pid: int) -> bool:
    st = read_stat(pid)
    return st is None or st.state == "Z"
