"""An agent's own account of what went wrong is its reason, and an ended agent's last screen is kept.

Real agents (corral-sim, behaving as Claude Code and codex do offline, hung or rate-limited) under a real
Instance: in tmux on a private socket, in a real PTY, and over the sdk transports' real pipes.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.instance import (
    AgentEnded,
    GetInstanceInfo,
    Instance,
    InstanceCapture,
    InstanceInfo,
    InstanceSend,
    InstanceSendKeys,
    InstanceSpec,
)
from actors.launcher import AgentRequest, prepare_instance
from actors.resources import ResourceControls
from actors.runtimes.base import RuntimeSpec
from actors.runtimes.factory import RuntimeFactory
from actors.runtimes.tmux_server import TmuxServer
from actors.supervision import BackoffSpec, ChildSpec, Restart, SupervisionTree, Supervisor, SupervisorFlags
from protocols.config import Config, ResourceSettings
from protocols.harness import get_harness
from protocols.messages import InstanceStatusChanged
from protocols.sdk import claude_argv_flags
from tests.integration import test_instances_api as api
from tests.integration.cli_kit import ok
from tests.unit.actor_kit import expect_event

pytestmark = pytest.mark.usefixtures("stop_actors")
SIM = str(Path(sys.executable).with_name("corral-sim"))
TITLE = "fix-login-coder"
OFFLINE_WORDS = (
    "Unable to connect to Anthropic services / Failed to connect to api.anthropic.com: ENOTFOUND / "
    "Please check your internet connection and network settings."
)
HINT = f"(interrupt it: corral instance send-keys {TITLE} C-c; restart it: corral instance restart {TITLE})"


class Holder(Supervisor):
    """A Project's stand-in: keeps the AgentEnded its Instance tells it."""

    ended: list[AgentEnded]

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, AgentEnded):
            Holder.ended.append(message)
            return None
        return super().on_receive(message)


@pytest.fixture
def ended() -> Iterator[list[AgentEnded]]:
    Holder.ended = []
    yield Holder.ended


@pytest.fixture
def tmux() -> Iterator[TmuxServer]:
    server = TmuxServer(socket=f"corral-test-{uuid.uuid4().hex[:8]}")
    yield server
    server.kill()


def run(trees: list[SupervisionTree], spec: InstanceSpec) -> SupervisionTree:
    """The Instance as a transient child of a supervisor that keeps what it is told, as under a Project."""
    holder = ChildSpec.supervisor(
        "holder", SupervisorFlags(max_restarts=5), supervisor_class=Holder, restart=Restart.TRANSIENT
    )
    tree = SupervisionTree.start(SupervisorFlags(max_restarts=5), [holder])
    trees.append(tree)
    tree.start_child(
        ChildSpec.worker("agent", Instance, spec, restart=Restart.TRANSIENT), path="root/holder", timeout=30
    )
    return tree


def screen_agent(
    trees: list[SupervisionTree],
    repo: Path,
    tmux: TmuxServer,
    mode: str,
    *,
    flags: tuple[str, ...] = (),
    env: tuple[tuple[str, str], ...] = (),
    max_restarts: int = 3,
) -> SupervisionTree:
    """corral-sim in tmux or a PTY, launched by corral as any agent is (its worktree, its argv)."""
    request = AgentRequest(
        project="proj",
        repo_root=str(repo),
        title=TITLE,
        program=SIM,
        mode=mode,
        flags=("--no-trust", *flags),
        env=(("CORRAL_SIM_THINK", "0"), *env),
    )
    prepared = prepare_instance(
        request,
        Config(),
        ResourceControls(ResourceSettings()),
        tmux_server=tmux,
        flags=SupervisorFlags(max_restarts=max_restarts, period_s=60),
        backoff=BackoffSpec(min_s=0.05, max_s=0.2, jitter=0, reset_after_s=30),
    )
    return run(trees, prepared.spec)


def sdk_agent(
    trees: list[SupervisionTree],
    repo: Path,
    transport: str,
    first_prompt: str,
    *,
    env: tuple[tuple[str, str], ...] = (),
    quiet_s: float | None = None,
) -> SupervisionTree:
    """corral-sim speaking codex app-server or claude stream-json; `quiet_s`: the sim harness's hang
    threshold instead of its default."""
    argv = (SIM, "app-server") if transport == "codex" else (SIM, *claude_argv_flags())
    runtime = RuntimeSpec(
        name=f"corral_proj_{TITLE}",
        argv=argv,
        cwd=str(repo),
        env=(("CORRAL_SIM_STATE", str(repo.parent / "sim-state")), ("CORRAL_SIM_THINK", "0"), *env),
        log_path=str(repo.parent / "logs" / f"{TITLE}.log"),
        sdk_transport=transport,  # type: ignore[arg-type]
    )
    harness = get_harness("sim")
    if quiet_s is not None:
        harness = msgspec.structs.replace(harness, sdk_quiet_s=quiet_s)
    spec = InstanceSpec(
        project="proj",
        title=TITLE,
        harness=harness,
        mode="sdk",
        runtime=runtime,
        factory=RuntimeFactory(kind="sdk", sdk_policy=lambda a: True, backoff=BackoffSpec(min_s=0, max_s=0)),
        first_prompt=first_prompt,
        cwd=str(repo),
        flags=SupervisorFlags(max_restarts=1, period_s=60),
    )
    return run(trees, spec)


def info(tree: SupervisionTree) -> InstanceInfo:
    return tree.ask(GetInstanceInfo(), path="root/holder/agent", timeout=20)


def tell(tree: SupervisionTree, message: Any) -> Any:
    return tree.ask(message, path="root/holder/agent", timeout=20)


def status_becomes(
    tree: SupervisionTree, match: Callable[[InstanceInfo], bool], what: str, timeout: float = 30
) -> InstanceInfo:
    """Poll the instance's status and reason (as `corral instance show` does) until `match`."""
    deadline = time.monotonic() + timeout
    seen: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        now = info(tree)
        if match(now):
            return now
        if not seen or seen[-1] != (now.status, now.reason):
            seen.append((now.status, now.reason))
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; statuses seen: {seen}")


def status(name: str, reason_has: str = "") -> Callable[[Any], bool]:
    return lambda e: isinstance(e, InstanceStatusChanged) and e.status == name and reason_has in e.reason


# -- tmux and pty: the last words on the screen are the exit's reason ---------------------------------------


@pytest.mark.parametrize("mode", ["tmux", "pty"])
def test_an_agent_that_exits_is_shown_with_what_it_said_last_and_stays_failed(
    trees: list[SupervisionTree],
    git_repo: Path,
    corral_home: Path,
    tmux: TmuxServer,
    ended: list[AgentEnded],
    mode: str,
) -> None:
    # Claude Code with no network exits 1 at once, after three lines saying why (corral-sim --offline).
    tree = screen_agent(trees, git_repo, tmux, mode, env=(("CORRAL_SIM_OFFLINE", "1"),), max_restarts=1)
    sub = tree.env.hub.subscribe()
    exited = expect_event(sub, status("exited"), timeout=30)
    assert exited.reason == f"exit status 1: {OFFLINE_WORDS}"
    failed = expect_event(sub, status("failed"), timeout=30)
    assert failed.reason == (
        f"exit status 1 after 1 restart; gave up after 1 restarts within 60 s (last error: {OFFLINE_WORDS})"
    )
    end = wait_for(lambda: [e for e in ended if e.status == "failed"], "the Project to be told")[0]
    assert end.reason == failed.reason and end.info.reason == failed.reason
    assert "Unable to connect to Anthropic services" in end.last_screen
    assert "Pane is dead" not in end.last_screen  # tmux's own notice is not the agent's screen
    time.sleep(0.5)  # a flip would come within milliseconds of the failure; give it time to show
    later = [e for e in sub.drain() if isinstance(e, InstanceStatusChanged)]
    assert not later, f"a failed agent's status must stay failed, it changed: {later}"


@pytest.mark.parametrize("mode", ["tmux", "pty"])
def test_an_ended_agent_leaves_its_whole_last_screen(
    trees: list[SupervisionTree],
    git_repo: Path,
    corral_home: Path,
    tmux: TmuxServer,
    ended: list[AgentEnded],
    mode: str,
) -> None:
    tree = screen_agent(trees, git_repo, tmux, mode, flags=("--flood", "0.0384"))  # 300 lines at launch
    status_becomes(tree, lambda i: i.status == "ready", "the agent to be ready")
    tell(tree, InstanceSend("/echo goodbye\n/exit 0"))
    end = wait_for(lambda: ended, "the agent to end")[0]
    assert end.status == "exited" and end.reason.startswith("exit status 0: ")
    assert end.reason.endswith(" / ⏺ goodbye")  # its last lines that say something, the last one last
    lines = end.last_screen.splitlines()
    assert sum(line.startswith("flood ") for line in lines) == 300  # far more than a status capture holds
    assert lines[0].startswith("corral-sim ") and "⏺ goodbye" in lines


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


# -- sdk: the transcript is the last screen; API trouble and silence are reasons ----------------------------


def test_an_ended_sdk_agent_leaves_its_transcript(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path, ended: list[AgentEnded]
) -> None:
    sdk_agent(trees, git_repo, "claude", "/echo hello from the agent\n/exit 0")
    end = wait_for(lambda: ended, "the agent to end")[0]
    assert end.status == "exited"
    assert "> /echo hello from the agent" in end.last_screen and "hello from the agent" in end.last_screen


def test_codex_reconnecting_is_the_reason_and_waiting_for_network_needs_a_person(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = sdk_agent(trees, git_repo, "codex", "add a note", env=(("CORRAL_SIM_OFFLINE", "1"),))
    retrying = status_becomes(
        tree, lambda i: "Reconnecting... 2/5" in i.reason, "a reconnect to be the reason", timeout=30
    )
    assert (retrying.status, retrying.reason) == (
        "running",
        "the model API is unreachable: Reconnecting... 2/5",
    )
    stuck = status_becomes(tree, lambda i: i.status == "waiting", "the agent to wait for a person")
    assert stuck.reason == (
        f"the model API is unreachable: Reconnecting... waiting for network; the turn cannot go on by itself "
        f"{HINT}"
    )
    tell(tree, InstanceSendKeys(("C-c",)))  # what the reason says to do
    done = status_becomes(tree, lambda i: i.status == "ready", "the interrupted turn to end")
    assert done.reason == "turn interrupted"


def test_claude_api_retries_are_the_reason_then_the_failed_turn(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = sdk_agent(trees, git_repo, "claude", "add a note", env=(("CORRAL_SIM_OFFLINE", "1"),))
    retrying = status_becomes(tree, lambda i: "API retry" in i.reason, "an API retry to be the reason")
    assert retrying.status == "running"
    assert retrying.reason.startswith("the model API is unreachable: API retry ")
    done = status_becomes(tree, lambda i: i.status == "ready", "the turn to fail")
    assert done.reason == "turn failed: API Error: Connection error."


def test_a_claude_usage_limit_is_said_in_the_transcript_and_the_failed_turn(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = sdk_agent(trees, git_repo, "claude", "/rate-limit")
    done = status_becomes(tree, lambda i: i.status == "ready", "the turn to fail")
    assert done.reason.startswith("turn failed: Claude usage limit reached. Your limit will reset at ")
    transcript = tell(tree, InstanceCapture(lines=None))
    assert "[error] usage limit reached (five hour), resets at " in transcript


def test_an_sdk_turn_with_no_event_for_the_threshold_may_be_hung(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = sdk_agent(trees, git_repo, "claude", "/hang", quiet_s=1.0)
    hung = status_becomes(tree, lambda i: i.status == "waiting", "the hung agent to be waiting")
    assert hung.reason == f"no event for 1 s during a turn: it may be hung {HINT}"


def test_c_c_interrupts_a_claude_turn(
    trees: list[SupervisionTree], git_repo: Path, corral_home: Path
) -> None:
    tree = sdk_agent(trees, git_repo, "claude", "/sleep 60\n/echo not reached")
    status_becomes(tree, lambda i: i.status == "running", "the turn to run")
    tell(tree, InstanceSendKeys(("C-c",)))
    done = status_becomes(tree, lambda i: i.status == "ready", "the interrupted turn to end", timeout=15)
    assert done.reason == "turn failed: Interrupted by user"


# -- through the daemon and the CLI: what a person sees ------------------------------------------------------

env = api.env  # the fixture: a daemon on a private runtime dir and tmux socket, always stopped


def test_capture_of_an_exited_instance_prints_its_whole_last_screen(env: api.Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "flooder", "--program", f"{SIM} --flood 0.0384")  # 300 lines at launch
    api.wait_status(env, git_repo, "flooder", "ready")
    ok(git_repo, "instance", "send", "flooder", "/echo that was a lot\n/exit 0")
    shown = api.wait_status(env, git_repo, "flooder", "exited")
    screen = ok(git_repo, "instance", "capture", "flooder", "--all").splitlines()
    assert screen[0].startswith("corral-sim ")  # its banner, from before the flood
    assert sum(line.startswith("flood ") for line in screen) == 300
    assert "⏺ that was a lot" in screen
    assert "⏺ that was a lot" in ok(git_repo, "instance", "capture", "flooder", "--lines", "3").splitlines()
    assert shown["reason"].startswith("exit status 0: ") and shown["reason"].endswith("⏺ that was a lot")


def test_a_claude_like_agent_in_tmux_shows_its_conversation_id(env: api.Env, git_repo: Path) -> None:
    ok(git_repo, "instance", "start", "talker", "--program", SIM)
    api.wait_status(env, git_repo, "talker", "ready")
    shown = json.loads(ok(git_repo, "instance", "show", "talker", "--json"))
    sessions = json.loads((Path(shown["worktree"]) / ".corral-sim" / "sessions.json").read_text())
    (conversation,) = sessions["sessions"]  # the session the agent itself recorded
    assert shown["conversation_id"] == conversation
    (listed,) = json.loads(ok(git_repo, "instance", "list", "--json"))
    assert listed["conversation_id"] == conversation
    ok(git_repo, "instance", "kill", "talker")
    assert json.loads(ok(git_repo, "instance", "show", "talker", "--json"))["conversation_id"] == conversation
