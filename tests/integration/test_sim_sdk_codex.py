"""`corral-sim app-server` driven over real pipes, as corral's sdk runtime drives `codex app-server`."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frontends.sim.sdk_codex import NOT_LOGGED_IN
from frontends.sim.testing import SIM, SimPipe
from tests.conftest import GIT_ENV, git

pytestmark = pytest.mark.timeout(60)

Message = dict[str, Any]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "CORRAL_SIM_STATE": str(tmp_path / "state"), "CORRAL_SIM_THINK": "0"}


@pytest.fixture
def server(git_repo: Path, env: dict[str, str]) -> Iterator[Callable[..., SimPipe]]:
    """server(*args, **env) → a running app-server in the repository; killed at teardown."""
    started: list[SimPipe] = []

    def start(*args: str, **extra: str) -> SimPipe:
        sim = SimPipe([SIM, "app-server", *args], cwd=git_repo, env=env | extra)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


class Client:
    """The client side of the protocol, on a SimPipe."""

    def __init__(self, sim: SimPipe) -> None:
        self.sim = sim
        self.next_id = 100

    def call(self, method: str, **params: Any) -> Message:
        """Send a request; return its response (result or error)."""
        self.next_id += 1
        request_id = self.next_id
        self.sim.send({"method": method, "id": request_id, "params": params})
        return self.sim.recv(lambda m: m.get("id") == request_id and "method" not in m)

    def handshake(self) -> None:
        response = self.call("initialize", clientInfo={"name": "corral-test", "version": "0"})
        assert response["result"]["userAgent"].startswith("corral-sim/")
        self.sim.send({"method": "initialized"})

    def start_thread(self, cwd: Path, policy: str = "never") -> str:
        response = self.call("thread/start", cwd=str(cwd), approvalPolicy=policy, sandbox="workspace-write")
        thread_id = response["result"]["thread"]["id"]
        started = self.sim.recv(lambda m: m.get("method") == "thread/started")
        assert started["params"]["thread"]["id"] == thread_id
        return thread_id

    def turn(self, thread_id: str, text: str) -> str:
        response = self.call("turn/start", threadId=thread_id, input=[{"type": "text", "text": text}])
        return response["result"]["turn"]["id"]

    def until_completed(self, on_request: Callable[[Message], Any] | None = None) -> list[Message]:
        """Every notification up to turn/completed; server requests are answered with `on_request`."""
        seen = []
        while True:
            message = self.sim.recv()
            if "id" in message and "method" in message:  # a request from the server
                assert on_request is not None, f"unexpected request {message}"
                self.sim.send({"id": message["id"], "result": on_request(message)})
            seen.append(message)
            if message.get("method") == "turn/completed":
                return seen


def methods(messages: list[Message]) -> list[str]:
    return [m["method"] for m in messages if "method" in m]


def completed_items(messages: list[Message], kind: str) -> list[Message]:
    return [
        m["params"]["item"]
        for m in messages
        if m.get("method") == "item/completed" and m["params"]["item"]["type"] == kind
    ]


def test_requests_before_initialize_are_refused_and_unknown_methods_are_32601(server) -> None:
    client = Client(server())
    assert client.call("thread/start")["error"]["message"] == "Not initialized"
    client.handshake()
    assert client.call("initialize", clientInfo={"name": "x"})["error"]["message"] == "Already initialized"
    assert client.call("no/such/method")["error"]["code"] == -32601


def test_a_turn_streams_deltas_and_edits_and_commits_in_the_thread_cwd(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    turn_id = client.turn(thread_id, "add the changelog")
    messages = client.until_completed()
    assert methods(messages)[:3] == ["turn/started", "item/started", "item/completed"]
    deltas = [m["params"]["delta"] for m in messages if m.get("method") == "item/agentMessage/delta"]
    texts = [item["text"] for item in completed_items(messages, "agentMessage")]
    assert "".join(deltas) == "".join(texts)
    assert len(deltas) > len(texts)  # streamed in pieces
    assert texts[-1].startswith("Done. edited sim/work.txt; committed ")
    (change,) = completed_items(messages, "fileChange")
    assert change["status"] == "completed"
    assert change["changes"][0]["path"] == str(git_repo / "sim" / "work.txt")
    commands = completed_items(messages, "commandExecution")
    assert commands[0]["status"] == "completed" and commands[0]["exitCode"] == 0
    final = messages[-1]["params"]
    assert final["threadId"] == thread_id
    assert final["turn"] == {"id": turn_id, "status": "completed", "items": [], "error": None}
    assert git(git_repo, "log", "-1", "--format=%s").strip() == "sim: add the changelog"


def test_an_edit_asks_for_approval_and_a_decline_leaves_the_file_alone(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo, policy="on-request")
    client.turn(thread_id, "/edit notes.txt hello")
    asked: list[Message] = []
    messages = client.until_completed(lambda m: asked.append(m) or {"decision": "decline"})
    (request,) = asked
    assert request["method"] == "item/fileChange/requestApproval"
    assert request["params"]["threadId"] == thread_id and request["params"]["itemId"].startswith("call_")
    assert "serverRequest/resolved" in methods(messages)
    assert completed_items(messages, "fileChange")[0]["status"] == "declined"
    assert not (git_repo / "notes.txt").exists()


def test_accept_for_session_stops_the_questions(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo, policy="on-request")
    client.turn(thread_id, "/edit a.txt one\n/edit b.txt two")
    asked: list[Message] = []
    client.until_completed(lambda m: asked.append(m) or {"decision": "acceptForSession"})
    assert len(asked) == 1
    assert (git_repo / "a.txt").read_text() == "one\n" and (git_repo / "b.txt").read_text() == "two\n"


def test_a_command_asks_for_approval_then_streams_its_output(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo, policy="untrusted")
    client.turn(thread_id, "/run echo 'hello there'")
    asked: list[Message] = []
    messages = client.until_completed(lambda m: asked.append(m) or {"decision": "accept"})
    assert [m["method"] for m in asked] == ["item/commandExecution/requestApproval"]
    assert asked[0]["params"]["command"] == "echo 'hello there'"
    outputs = [
        m["params"]["delta"] for m in messages if m.get("method") == "item/commandExecution/outputDelta"
    ]
    assert outputs == ["hello there"]


def test_resume_continues_the_same_thread_in_a_new_process(server, git_repo: Path) -> None:
    first = Client(server())
    first.handshake()
    thread_id = first.start_thread(git_repo)
    first.turn(thread_id, "/echo one")
    first.until_completed()
    first.sim.close_stdin()
    assert first.sim.wait() == 0

    second = Client(server())
    second.handshake()
    resumed = second.call("thread/resume", threadId=thread_id)
    assert resumed["result"]["thread"]["id"] == thread_id
    second.turn(thread_id, "/echo two")
    messages = second.until_completed()
    assert completed_items(messages, "agentMessage")[0]["text"] == "two"
    unknown = second.call("thread/resume", threadId="00000000-0000-0000-0000-000000000000")
    assert "no rollout found" in unknown["error"]["message"]


def test_interrupt_ends_the_turn_as_interrupted(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    turn_id = client.turn(thread_id, "/sleep 30\n/echo not reached")
    client.sim.recv(lambda m: m.get("method") == "turn/started")
    assert client.call("turn/interrupt", threadId=thread_id, turnId=turn_id)["result"] == {}
    messages = client.until_completed()
    assert messages[-1]["params"]["turn"]["status"] == "interrupted"
    assert all(item["text"] != "not reached" for item in completed_items(messages, "agentMessage"))


def test_steer_adds_input_to_the_running_turn(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    turn_id = client.turn(thread_id, "/sleep 0.5")
    steered = client.call(
        "turn/steer",
        threadId=thread_id,
        expectedTurnId=turn_id,
        input=[{"type": "text", "text": "/echo steered"}],
    )
    assert steered["result"] == {"turnId": turn_id}
    messages = client.until_completed()
    assert "steered" in [item["text"] for item in completed_items(messages, "agentMessage")]
    late = client.call("turn/steer", threadId=thread_id, expectedTurnId=turn_id, input=[])
    assert late["error"]["message"] == "no active turn to steer"


def test_a_question_ends_the_turn_and_the_next_turn_answers_it(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    client.turn(thread_id, "/ask\n/echo after the answer")
    messages = client.until_completed()
    assert completed_items(messages, "agentMessage")[-1]["text"] == "Would you like to proceed? (Y)es/(N)o"
    client.turn(thread_id, "yes")
    texts = [item["text"] for item in completed_items(client.until_completed(), "agentMessage")]
    assert "after the answer" in texts


def test_error_directive_sends_an_error_notification_and_fails_the_turn(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    client.turn(thread_id, "/error upstream overloaded")
    messages = client.until_completed()
    (error,) = [m for m in messages if m.get("method") == "error"]
    assert error["params"]["error"]["message"] == "upstream overloaded"
    assert messages[-1]["params"]["turn"]["status"] == "failed"
    assert messages[-1]["params"]["turn"]["error"] == {"message": "upstream overloaded"}


def test_not_logged_in_reports_unauthorized_then_exits_1(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    client.turn(thread_id, "/not-logged-in")
    messages = client.until_completed()
    (error,) = [m for m in messages if m.get("method") == "error"]
    assert error["params"]["error"] == {
        "message": NOT_LOGGED_IN,
        "codexErrorInfo": "Unauthorized",
        "additionalDetails": None,
    }
    assert messages[-1]["params"]["turn"]["status"] == "failed"
    assert client.sim.wait() == 1


def test_crash_mid_turn_exits_with_the_status(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    client.turn(thread_id, "/echo about to crash\n/crash 5")
    client.sim.recv(
        lambda m: m.get("method") == "item/completed" and m["params"]["item"].get("text") == "about to crash"
    )
    assert client.sim.wait() == 5


def test_hang_mid_turn_answers_nothing_more(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    client.turn(thread_id, "/hang")
    client.sim.recv(lambda m: m.get("method") == "turn/started")
    client.sim.send({"method": "thread/start", "id": 1, "params": {}})
    with pytest.raises(AssertionError, match="no matching message"):
        client.sim.recv(lambda m: m.get("id") == 1, timeout=0.5)
    assert client.sim.proc.poll() is None
    os.kill(client.sim.pid, signal.SIGTERM)
    assert client.sim.wait() == 143


def test_flood_at_launch_goes_to_stderr_and_the_protocol_still_works(server) -> None:
    sim = server("--flood", "2")
    assert sim.stderr_bytes(2_000_000, timeout=30) >= 2_000_000
    Client(sim).handshake()


def test_end_of_input_exits_0(server) -> None:
    sim = server()
    Client(sim).handshake()
    sim.close_stdin()
    assert sim.wait() == 0


def test_offline_retries_then_waits_for_the_network_until_the_turn_is_interrupted(
    server, git_repo: Path
) -> None:
    client = Client(server("--offline"))
    client.handshake()
    thread_id = client.start_thread(git_repo)
    turn_id = client.turn(thread_id, "add the changelog")
    errors = []
    while len(errors) < 6:
        message = client.sim.recv(lambda m: m.get("method") in ("error", "turn/completed"))
        assert message["method"] == "error", f"the turn ended: {message}"
        errors.append(message["params"])
    assert [e["error"]["message"] for e in errors] == [
        *(f"Reconnecting... {n}/5" for n in range(1, 6)),
        "Reconnecting... waiting for network",
    ]
    assert all(e["willRetry"] is True and e["turnId"] == turn_id for e in errors)
    client.call("turn/interrupt", threadId=thread_id, turnId=turn_id)
    done = client.sim.recv(lambda m: m.get("method") == "turn/completed")
    assert done["params"]["turn"]["status"] == "interrupted"
    assert not (git_repo / "sim").exists()  # no work done without the model


def test_a_usage_limit_is_an_error_that_fails_the_turn(server, git_repo: Path) -> None:
    client = Client(server())
    client.handshake()
    thread_id = client.start_thread(git_repo)
    client.turn(thread_id, "/rate-limit\n/echo not reached")
    messages = client.until_completed()
    (error,) = [m["params"] for m in messages if m.get("method") == "error"]
    assert (error["error"]["codexErrorInfo"], error["willRetry"]) == ("UsageLimitExceeded", False)
    turn = messages[-1]["params"]["turn"]
    assert turn["status"] == "failed" and turn["error"]["message"] == error["error"]["message"]
