"""An agent end to end: corral-sim in tmux (or a PTY) in its own worktree, under an Instance, with reasons.

Real tmux on a private socket, real git worktrees, real processes; the simulated agent plays the agent.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.instance import (
    GetInstanceInfo,
    Instance,
    InstanceKill,
    InstancePause,
    InstanceResume,
    InstanceSendKeys,
)
from actors.launcher import AgentRequest, prepare_instance
from actors.resources import ResourceControls
from actors.runtimes.procinfo import read_stat
from actors.runtimes.tmux_server import TmuxServer
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    Restart,
    SupervisionEnv,
    SupervisionTree,
    SupervisorFlags,
)
from protocols.config import Config, ResourceSettings
from protocols.errors import ConflictError
from protocols.messages import ChildExited, InstanceNote, InstanceStatusChanged
from tests.conftest import git
from tests.unit.actor_kit import expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")
SIM = str(Path(sys.executable).with_name("corral-sim"))


@pytest.fixture
def tmux() -> Iterator[TmuxServer]:
    server = TmuxServer(socket=f"corral-test-{uuid.uuid4().hex[:8]}")
    yield server
    server.kill()


def run_agent(
    trees: list[SupervisionTree],
    repo: Path,
    tmux: TmuxServer,
    *,
    prompt: str = "",
    mode: str = "tmux",
    flags: tuple[str, ...] = (),
    max_restarts: int = 3,
    auto_yes: bool = False,
) -> tuple[SupervisionTree, Any]:
    request = AgentRequest(
        project="proj",
        repo_root=str(repo),
        title="fix-login-coder",
        program=SIM,
        mode=mode,
        prompt=prompt,
        flags=flags,
        task="fix-login",
        agent_type="coder",
        auto_yes=auto_yes,
    )
    prepared = prepare_instance(
        request,
        Config(),
        ResourceControls(ResourceSettings()),
        tmux_server=tmux,
        flags=SupervisorFlags(max_restarts=max_restarts, period_s=60),
        backoff=BackoffSpec(min_s=0.05, max_s=0.2, jitter=0, reset_after_s=30),
    )
    # Transient, as under its Project: an Instance that shut down with its agent stays down.
    tree = SupervisionTree.start(
        SupervisorFlags(max_restarts=5),
        [ChildSpec.worker("agent", Instance, prepared.spec, restart=Restart.TRANSIENT)],  # as in a Project
    )
    trees.append(tree)
    return tree, prepared


ENDED = ("exited", "failed")


def status(name: str, reason_has: str = "") -> Any:
    return lambda e: isinstance(e, InstanceStatusChanged) and e.status == name and reason_has in e.reason


def ask(tree: SupervisionTree, message: Any) -> Any:
    return tree.ask(message, path="root/agent", timeout=20)


@pytest.mark.parametrize("mode", ["tmux", "pty"])
def test_trust_screen_prompt_permission_and_ready_with_reasons(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, tmux: TmuxServer, mode: str
) -> None:
    prompt = "/edit notes.txt hello\n/commit add notes"
    tree, prepared = run_agent(trees, git_repo, tmux, prompt=prompt, mode=mode)
    sub = tree.env.hub.subscribe()
    worktree = Path(prepared.worktree.path)
    assert worktree.parent.name == ".worktrees" and prepared.worktree.branch == "corral/fix-login-coder"
    waiting = expect_event(sub, status("waiting", "permission"), timeout=30)
    assert "Do you want to make this edit" in waiting.reason or "permission prompt" in waiting.reason
    ask(tree, InstanceSendKeys(("1",)))
    expect_event(sub, status("running"), timeout=20)
    ready = expect_event(sub, status("ready"), timeout=30)
    assert ready.reason
    assert (worktree / "notes.txt").read_text().strip() == "hello"
    assert git(worktree, "log", "-1", "--format=%s").strip() == "add notes"
    info = ask(tree, GetInstanceInfo())
    assert info.status == "ready" and info.resource_profile == "normal"
    if mode == "tmux":
        assert info.attach.argv[:3] == ("tmux", "-L", tmux.socket)


def test_kill_9_restarts_with_backoff_then_fails_with_the_reason_past_the_intensity(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, tmux: TmuxServer
) -> None:
    tree, _ = run_agent(trees, git_repo, tmux, max_restarts=2)
    sub = tree.env.hub.subscribe()
    for _ in range(3):
        expect_event(sub, status("ready"), timeout=30)
        pid = ask(tree, GetInstanceInfo()).metrics.pid
        os.kill(pid, signal.SIGKILL)
        exited = expect_event(sub, lambda e: isinstance(e, InstanceStatusChanged) and e.status in ENDED)
        assert "killed by SIGKILL" in exited.reason
    failed = exited if exited.status == "failed" else expect_event(sub, status("failed"))
    expected = "killed by SIGKILL after 2 restarts; gave up after 2 restarts within 60 s"
    assert failed.reason.startswith(expected)
    gone = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "agent")
    assert gone.reason.error_type == "ReachedMaxRestartIntensity" and not gone.restarting
    later = [e for e in sub.drain() if isinstance(e, InstanceStatusChanged)]
    assert not later, f"a failed agent's status must stay failed, it changed: {later}"


def test_destroy_leaves_no_process_behind_even_a_setsid_grandchild(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, tmux: TmuxServer
) -> None:
    tree, _ = run_agent(trees, git_repo, tmux, flags=("--spawn-grandchild",))
    sub = tree.env.hub.subscribe()
    expect_event(sub, status("ready"), timeout=30)
    agent = ask(tree, GetInstanceInfo()).metrics.pid

    def grandchildren() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if (
                    b"corral-sim-grandchild" in cmdline
                    and str(git_repo).encode() in Path(f"/proc/{entry}/environ").read_bytes()
                ):
                    found.append(int(entry))
        return found

    escaped = wait_until(grandchildren, what="the grandchild")
    assert all(read_stat(pid).sid != read_stat(agent).sid for pid in escaped)  # it really left the session
    assert ask(tree, InstanceKill()) == []
    expect_event(sub, status("exited", "killed by request"))
    wait_until(lambda: not grandchildren(), what="no grandchild left")
    assert read_stat(agent) is None or read_stat(agent).state == "Z"


def test_notes_record_what_corral_did(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, tmux: TmuxServer
) -> None:
    tree, _ = run_agent(trees, git_repo, tmux)
    sub = tree.env.hub.subscribe()
    note = expect_event(sub, lambda e: isinstance(e, InstanceNote) and "trust" in e.message, timeout=30)
    assert note.instance == "fix-login-coder"


def test_pause_commits_the_work_and_removes_the_worktree_resume_brings_it_back(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, tmux: TmuxServer, tmp_path: Path
) -> None:
    tree, prepared = run_agent(trees, git_repo, tmux, prompt="/edit draft.txt half done")
    sub = tree.env.hub.subscribe()
    worktree, branch = Path(prepared.worktree.path), prepared.worktree.branch
    expect_event(sub, status("waiting", "permission"), timeout=30)
    ask(tree, InstanceSendKeys(("1",)))
    wait_until(lambda: (worktree / "draft.txt").exists(), timeout=30, what="the uncommitted edit")
    expect_event(sub, status("ready"), timeout=30)
    info = ask(tree, InstancePause())
    assert info.status == "paused" and info.reason.startswith("paused: committed ")
    assert not worktree.exists()
    assert git(git_repo, "log", "-1", "--format=%s", branch).strip() == "[corral] paused fix-login-coder"
    assert git(git_repo, "show", f"{branch}:draft.txt").strip() == "half done"
    # While paused, someone checks the branch out elsewhere: resume refuses and the instance stays paused.
    elsewhere = tmp_path / "elsewhere"
    git(git_repo, "worktree", "add", str(elsewhere), branch)
    with pytest.raises(ConflictError, match="already checked out"):
        ask(tree, InstanceResume())
    assert ask(tree, GetInstanceInfo()).status == "paused"
    git(git_repo, "worktree", "remove", str(elsewhere))
    ask(tree, InstanceResume())
    assert (worktree / "draft.txt").read_text().strip() == "half done"
    back = expect_event(sub, lambda e: isinstance(e, InstanceStatusChanged) and e.previous == "paused")
    assert (back.status, back.reason) == ("loading", "resumed by request")
    expect_event(sub, status("ready"), timeout=30)
    pid = ask(tree, GetInstanceInfo()).metrics.pid
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert (
        b"--continue" in argv and b"/edit draft.txt half done" not in argv
    )  # continues, does not redo the task


def test_a_request_for_sdk_with_a_program_that_has_none_falls_back_to_tmux_with_a_note(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, tmux: TmuxServer, tmp_path: Path
) -> None:
    fake_aider = tmp_path / "bin" / "aider"
    fake_aider.parent.mkdir()
    fake_aider.symlink_to(SIM)  # the aider harness, played by the sim
    request = AgentRequest(
        project="proj", repo_root=str(git_repo), title="helper", program=str(fake_aider), mode="headless"
    )
    prepared = prepare_instance(request, Config(), ResourceControls(ResourceSettings()), tmux_server=tmux)
    assert prepared.spec.mode == "tmux"
    assert any("sdk" in note and "tmux" in note for note in prepared.notes), prepared.notes
    env = SupervisionEnv.create()
    sub = env.hub.subscribe()  # before the start: the note is published as the instance starts
    tree = SupervisionTree.start(
        SupervisorFlags(),
        [ChildSpec.worker("agent", Instance, prepared.spec, restart=Restart.TRANSIENT)],
        env=env,
    )
    trees.append(tree)
    note = expect_event(sub, lambda e: isinstance(e, InstanceNote) and "tmux" in e.message)
    assert note.level == "warn"
