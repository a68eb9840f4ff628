"""An Instance supervising a real agent (corral-sim): status with reasons, failure past the intensity."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from actors.instance import (
    AgentEnded,
    GetInstanceInfo,
    Instance,
    InstanceCapture,
    InstanceKill,
    InstanceSpec,
)
from actors.runtimes.base import RuntimeSpec
from actors.runtimes.factory import RuntimeFactory
from actors.supervision import BackoffSpec, ChildSpec, Restart, SupervisionTree, Supervisor, SupervisorFlags
from protocols.harness import get_harness
from protocols.messages import ChildExited, InstanceStatusChanged
from protocols.sdk import claude_argv_flags
from tests.unit.actor_kit import expect_event, wait_until

pytestmark = pytest.mark.usefixtures("stop_actors")
SIM = str(Path(sys.executable).with_name("corral-sim"))


def start_instance(
    trees: list[SupervisionTree],
    repo: Path,
    *extra: str,
    first_prompt: str = "",
    max_restarts: int = 3,
    transport: str = "claude",
    restart: Restart = Restart.PERMANENT,
) -> SupervisionTree:
    argv = (SIM, "app-server", *extra) if transport == "codex" else (SIM, *claude_argv_flags(), *extra)
    rt_spec = RuntimeSpec(
        name="corral_proj_fix-login-coder",
        argv=argv,
        cwd=str(repo),
        env=(("CORRAL_SIM_STATE", str(repo.parent / "sim-state")),),
        log_path=str(repo.parent / "logs" / "coder.log"),
        sdk_transport=transport,  # type: ignore[arg-type]
    )
    factory = RuntimeFactory(kind="sdk", sdk_policy=lambda a: True, backoff=BackoffSpec(min_s=0, max_s=0))
    spec = InstanceSpec(
        project="proj",
        title="fix-login-coder",
        harness=get_harness("sim"),
        mode="sdk",
        runtime=rt_spec,
        factory=factory,
        first_prompt=first_prompt,
        cwd=str(repo),
        flags=SupervisorFlags(max_restarts=max_restarts, period_s=60),
        task="fix-login",
        agent_type="coder",
    )
    # As under a Project: the Instance is a transient child of a supervisor that records what it is told.
    holder = ChildSpec.supervisor(
        "holder", SupervisorFlags(max_restarts=5), supervisor_class=Holder, restart=Restart.TRANSIENT
    )
    tree = SupervisionTree.start(SupervisorFlags(max_restarts=5), [holder])
    tree.start_child(
        ChildSpec.worker("coder", Instance, spec, restart=Restart.TRANSIENT), path="root/holder", timeout=30
    )
    trees.append(tree)
    return tree


ENDED: list[AgentEnded] = []


class Holder(Supervisor):
    """A Project's stand-in: keeps the AgentEnded its Instance tells it."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AgentEnded):
            ENDED.append(message)
            return None
        return super().on_receive(message)


def ask(tree: SupervisionTree, message: Any) -> Any:
    return tree.ask(message, path="root/holder/coder", timeout=20)


def status_event(status: str):
    return lambda e: isinstance(e, InstanceStatusChanged) and e.status == status


def test_an_sdk_agent_works_its_first_prompt_and_becomes_ready_with_reasons(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = start_instance(trees, git_repo, first_prompt="/edit hello.txt hi\n/commit say hi")
    sub = tree.env.hub.subscribe()
    running = expect_event(sub, status_event("running"), timeout=20)
    ready = expect_event(sub, status_event("ready"), timeout=20)
    assert running.instance == "fix-login-coder" and running.reason
    assert ready.reason
    assert (git_repo / "hello.txt").read_text().strip() == "hi"
    info = ask(tree, GetInstanceInfo())
    assert (info.status, info.mode, info.task, info.agent_type) == ("ready", "sdk", "fix-login", "coder")
    assert "say hi" in ask(tree, InstanceCapture(lines=None)) or "hello.txt" in ask(
        tree, InstanceCapture(lines=None)
    )


def test_past_the_intensity_the_instance_records_failed_and_shuts_down_for_good(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    ENDED.clear()
    tree = start_instance(
        trees, git_repo, "--crash-after", "0.3", "--exit-status", "3", max_restarts=2, transport="codex"
    )
    sub = tree.env.hub.subscribe()
    failed = expect_event(sub, status_event("failed"), timeout=30)
    reason = (
        "exit status 3 after 2 restarts; gave up after 2 restarts within 60 s "
        "(last error: corral-sim: simulated crash (exit 3))"
    )
    assert failed.reason == reason
    exited = expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "coder", timeout=20)
    assert exited.reason.kind == "shutdown" and exited.reason.error_type == "ReachedMaxRestartIntensity"
    assert not exited.restarting  # transient: its supervisor leaves it down, and lives on
    assert wait_until(lambda: ENDED, what="the Project told")[0].info.status == "failed"
    assert ENDED[0].info.reason == reason and ENDED[0].info.restarts == 2
    assert tree.env.directory.get("root/holder/coder") is None  # its thread is gone
    assert tree.env.directory.get("root/holder") is not None
    later = [e for e in sub.drain() if isinstance(e, InstanceStatusChanged)]
    assert not later, f"the failed status changed again: {later}"


def test_kill_ends_the_agent_and_its_instance_recorded_killed_by_request(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    ENDED.clear()
    tree = start_instance(trees, git_repo, first_prompt="/echo up")
    sub = tree.env.hub.subscribe()
    expect_event(sub, status_event("ready"), timeout=20)
    assert ask(tree, InstanceKill()) == []  # no process survived
    exited = expect_event(sub, status_event("exited"), timeout=20)
    assert exited.reason == "killed by request"
    expect_event(sub, lambda e: isinstance(e, ChildExited) and e.child_id == "coder", timeout=20)
    ended = wait_until(lambda: ENDED, what="the Project told")[0]
    assert (ended.status, ended.reason, ended.killed) == ("exited", "killed by request", True)
    assert tree.env.directory.get("root/holder/coder") is None
