"""An Instance supervising a real agent (corral-sim): status with reasons, failure past the intensity."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from actors.instance import (
    GetInstanceInfo,
    Instance,
    InstanceCapture,
    InstanceKill,
    InstanceRestart,
    InstanceSend,
    InstanceSpec,
    runtime_child,
)
from actors.runtimes.base import RuntimeSpec
from actors.runtimes.sdk import SdkRuntime, SessionMemo
from actors.supervision import BackoffSpec, ChildSpec, Restart, SupervisionTree, SupervisorFlags
from protocols.harness import get_harness
from protocols.messages import InstanceStatusChanged
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
    runtime = runtime_child(
        SdkRuntime, rt_spec, memo=SessionMemo(), policy=lambda a: True, backoff=BackoffSpec(min_s=0, max_s=0)
    )
    spec = InstanceSpec(
        project="proj",
        title="fix-login-coder",
        harness=get_harness("sim"),
        mode="sdk",
        runtime=runtime,
        first_prompt=first_prompt,
        cwd=str(repo),
        flags=SupervisorFlags(max_restarts=max_restarts, period_s=60),
        task="fix-login",
        agent_type="coder",
    )
    child = ChildSpec.worker("coder", Instance, spec, restart=restart)
    tree = SupervisionTree.start(SupervisorFlags(max_restarts=5), [child])
    trees.append(tree)
    return tree


def ask(tree: SupervisionTree, message: Any) -> Any:
    return tree.ask(message, path="root/coder", timeout=20)


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


def test_past_the_intensity_the_instance_is_failed_with_the_reason_and_a_restart_brings_it_back(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = start_instance(
        trees, git_repo, "--crash-after", "0.3", "--exit-status", "3", max_restarts=2, transport="codex"
    )
    sub = tree.env.hub.subscribe()
    failed = expect_event(sub, status_event("failed"), timeout=30)
    assert failed.reason == (
        "exit status 3 after 2 restarts; gave up after 2 restarts within 60 s "
        "(last error: corral-sim: simulated crash (exit 3))"
    )
    info = ask(tree, GetInstanceInfo())
    assert info.status == "failed" and info.restarts == 2
    assert wait_until(lambda: tree.env.directory.get("root/coder"), what="instance alive")  # not escalated
    ask(tree, InstanceRestart())
    back = expect_event(
        sub, lambda e: isinstance(e, InstanceStatusChanged) and e.previous == "failed", timeout=20
    )
    assert (back.status, back.reason) == ("loading", "restarted by request")
    assert ask(tree, GetInstanceInfo()).restarts == 0


def test_kill_ends_the_agent_and_leaves_the_instance_exited(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = start_instance(trees, git_repo, first_prompt="/echo up", restart=Restart.TRANSIENT)  # as a Project
    sub = tree.env.hub.subscribe()
    expect_event(sub, status_event("ready"), timeout=20)
    assert ask(tree, InstanceKill()) == []
    exited = expect_event(sub, status_event("exited"), timeout=20)
    assert exited.reason == "killed by request"

    # Nothing is left to watch: the Instance ends (its thread and store with it), normally, so its
    # transient child spec stays with its supervisor, not restarted, for a restart to start again.
    def stopped() -> bool:
        (child,) = [c for c in tree.statistics().children if c.id == "coder"]
        return child.state == "stopped"

    wait_until(stopped, what="the Instance to end, not restarted")
    assert tree.env.directory.get("root/coder") is None
    with pytest.raises(Exception, match="nothing is running at root/coder"):
        ask(tree, InstanceSend("hello"))
