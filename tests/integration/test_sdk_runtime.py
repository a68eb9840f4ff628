"""SdkRuntime against corral-sim's codex app-server and claude stream-json modes: real processes, real git."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.clock import FakeClock
from actors.runtimes.base import Capture, IsAlive, RuntimeSpec, Send, SendKeys
from actors.runtimes.sdk import SdkRuntime, SessionMemo
from actors.supervision import (
    BackoffSpec,
    ChildSpec,
    Restart,
    SupervisionEnv,
    SupervisionTree,
    SupervisorFlags,
)
from protocols.messages import ChildExited, ChildStarted, SupervisorGaveUp
from protocols.sdk import claude_argv_flags
from tests.conftest import git
from tests.unit.actor_kit import expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")
SIM = str(Path(sys.executable).with_name("corral-sim"))


def argv_for(transport: str, *extra: str) -> tuple[str, ...]:
    if transport == "codex":
        return (SIM, "app-server", *extra)
    return (SIM, *claude_argv_flags(), *extra)


def start(
    trees: list[SupervisionTree],
    repo: Path,
    transport: str,
    *extra: str,
    memo: SessionMemo | None = None,
    policy: Any = None,
    clock: FakeClock | None = None,
    max_restarts: int = 3,
    handshake_timeout_s: float = 30.0,
) -> SupervisionTree:
    spec = RuntimeSpec(
        name=f"sdk-{transport}",
        argv=argv_for(transport, *extra),
        cwd=str(repo),
        env=(("CORRAL_SIM_STATE", str(repo.parent / "sim-state")),),
        log_path=str(repo.parent / "logs" / f"sdk-{transport}.log"),
        sdk_transport=transport,  # type: ignore[arg-type]
    )
    kwargs: dict[str, Any] = {"memo": memo or SessionMemo(), "handshake_timeout_s": handshake_timeout_s}
    if policy is not None:
        kwargs["policy"] = policy
    child = ChildSpec.worker(
        "rt", SdkRuntime, spec, restart=Restart.TRANSIENT, backoff=BackoffSpec(min_s=0, max_s=0), **kwargs
    )
    env = SupervisionEnv.create(clock, seed=3)
    tree = SupervisionTree.start(SupervisorFlags(max_restarts=max_restarts, period_s=60), [child], env=env)
    trees.append(tree)
    return tree


def runtime(tree: SupervisionTree) -> pykka.ActorRef[Any]:
    return wait_until(lambda: tree.env.directory.get("root/rt"), what="runtime running")


def transcript(tree: SupervisionTree) -> str:
    return runtime(tree).ask(Capture(lines=None), timeout=10)


def last_commit_message(repo: Path) -> str:
    return git(repo, "log", "-1", "--format=%s").strip()


@pytest.mark.parametrize("transport", ["codex", "claude"])
def test_a_turn_streams_text_and_the_agent_edits_and_commits(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, transport: str
) -> None:
    tree = start(trees, git_repo, transport, policy=lambda approval: True)
    runtime(tree).ask(Send("/edit notes/a.txt hello from sdk\n/commit add a note"), timeout=10)
    wait_until(lambda: (git_repo / "notes" / "a.txt").exists(), what="the edit")
    wait_until(lambda: last_commit_message(git_repo) == "add a note", what="the commit")
    text = wait_until(lambda: "[allowed] file change" in (t := transcript(tree)) and t, what="transcript")
    assert "notes/a.txt" in text
    assert runtime(tree).ask(IsAlive(), timeout=5)


@pytest.mark.parametrize("transport", ["codex", "claude"])
def test_an_approval_the_policy_leaves_to_a_person_waits_for_their_key(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, transport: str
) -> None:
    tree = start(trees, git_repo, transport)  # default policy: ask a person
    runtime(tree).ask(Send("/edit b.txt needs approval"), timeout=10)
    wait_until(lambda: "[approval needed]" in transcript(tree), what="the approval request")
    assert not (git_repo / "b.txt").exists()
    runtime(tree).ask(SendKeys(("y",)), timeout=10)
    wait_until(lambda: (git_repo / "b.txt").exists(), what="the edit after approval")


@pytest.mark.parametrize("transport", ["codex", "claude"])
def test_a_restarted_runtime_resumes_the_same_conversation(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, transport: str
) -> None:
    memo = SessionMemo()
    tree = start(trees, git_repo, transport, memo=memo, policy=lambda approval: True)
    sub = tree.env.hub.subscribe()
    runtime(tree).ask(Send("/echo first turn"), timeout=10)
    session = wait_until(memo.get, what="a session id")
    wait_until(lambda: "first turn" in transcript(tree), what="the first reply")
    pid = runtime(tree).proxy().proc.get().pid  # the agent process of this generation
    os.kill(pid, signal.SIGKILL)
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "rt")
    assert exited.reason.is_error and "SIGKILL" in exited.reason.message
    expect_event(sub, lambda e: isinstance(e, ChildStarted) and e.generation == 2)
    runtime(tree).ask(Send("/echo second turn"), timeout=10)
    wait_until(lambda: "second turn" in transcript(tree), what="a reply after the restart")
    assert memo.get() == session  # the same conversation, not a new one


@pytest.mark.parametrize("transport", ["codex", "claude"])
def test_not_logged_in_becomes_the_error_with_the_agents_own_message(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, transport: str
) -> None:
    tree = start(trees, git_repo, transport, "--not-logged-in", max_restarts=0)
    sub = tree.env.hub.subscribe()
    runtime(tree).ask(Send("hello"), timeout=10)
    gave_up = expect_event(sub, lambda e: isinstance(e, SupervisorGaveUp), timeout=30)
    message = gave_up.reason.message.lower()
    assert "logged in" in message or "unauthorized" in message, gave_up.reason


def test_no_answer_to_the_handshake_is_an_error_not_a_hang(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    clock = FakeClock()
    tree = start(
        trees, git_repo, "codex", "--slow-start", "60", clock=clock, max_restarts=0, handshake_timeout_s=5
    )
    sub = tree.env.hub.subscribe()
    runtime(tree)
    clock.advance(5)
    gave_up = expect_event(sub, lambda e: isinstance(e, SupervisorGaveUp), timeout=30)
    assert "no answer to the handshake within 5 s" in gave_up.reason.message
