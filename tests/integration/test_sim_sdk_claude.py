"""`corral-sim -p` with stream-json in and out, over real pipes, as corral's sdk runtime drives claude."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frontends.sim.screen import NOT_LOGGED_IN
from frontends.sim.testing import SIM, SimPipe
from tests.conftest import GIT_ENV, git

pytestmark = pytest.mark.timeout(60)

STREAM = ("-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")
Message = dict[str, Any]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "CORRAL_SIM_STATE": str(tmp_path / "state"), "CORRAL_SIM_THINK": "0"}


@pytest.fixture
def claude(git_repo: Path, env: dict[str, str]) -> Iterator[Callable[..., SimPipe]]:
    """claude(*args) → the sim in stream-json print mode in the repository; killed at teardown."""
    started: list[SimPipe] = []

    def start(*args: str, **extra: str) -> SimPipe:
        sim = SimPipe([SIM, *STREAM, *args], cwd=git_repo, env=env | extra)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


def user(text: str) -> Message:
    return {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": text}]}}


def until_result(sim: SimPipe, on_control: Callable[[Message], Message] | None = None) -> list[Message]:
    """Messages up to the turn's result; `can_use_tool` requests are answered with `on_control`."""
    seen = []
    while True:
        message = sim.recv()
        seen.append(message)
        if message["type"] == "control_request":
            assert on_control is not None, f"unexpected control request {message}"
            response = {
                "subtype": "success",
                "request_id": message["request_id"],
                "response": on_control(message),
            }
            sim.send({"type": "control_response", "response": response})
        if message["type"] == "result":
            return seen


def texts(messages: list[Message]) -> list[str]:
    return [
        block["text"]
        for m in messages
        if m["type"] == "assistant"
        for block in m["message"]["content"]
        if block["type"] == "text"
    ]


def tool_results(messages: list[Message]) -> list[Message]:
    return [block for m in messages if m["type"] == "user" for block in m["message"]["content"]]


def test_a_turn_sends_init_then_tool_use_and_results_then_a_result(claude, git_repo: Path) -> None:
    sim = claude("--dangerously-skip-permissions")
    sim.send(user("add the changelog"))
    messages = until_result(sim)
    init = messages[0]
    assert (init["type"], init["subtype"]) == ("system", "init")
    session_id = init["session_id"]
    uses = [
        b
        for m in messages
        if m["type"] == "assistant"
        for b in m["message"]["content"]
        if b["type"] == "tool_use"
    ]
    assert [u["name"] for u in uses] == ["Write", "Bash"]
    assert uses[0]["input"]["file_path"] == str(git_repo / "sim" / "work.txt")
    results = tool_results(messages)
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert not any(r["is_error"] for r in results)
    result = messages[-1]
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["session_id"] == session_id
    assert result["result"].startswith("Done. edited sim/work.txt; committed ")
    assert all(m.get("session_id") == session_id for m in messages)
    assert git(git_repo, "log", "-1", "--format=%s").strip() == "sim: add the changelog"


def test_partial_messages_stream_text_deltas(claude) -> None:
    sim = claude("--include-partial-messages")
    sim.send(user("/echo a reply long enough to come in several pieces"))
    messages = until_result(sim)
    deltas = [
        m["event"]["delta"]["text"]
        for m in messages
        if m["type"] == "stream_event" and m["event"]["type"] == "content_block_delta"
    ]
    assert len(deltas) > 2
    assert "a reply long enough to come in several pieces" in "".join(deltas)
    assert "".join(deltas) == "".join(texts(messages))


def test_without_permission_a_tool_use_is_denied_and_listed(claude, git_repo: Path) -> None:
    sim = claude()
    sim.send(user("/edit notes.txt hello"))
    messages = until_result(sim)
    (result_block,) = tool_results(messages)
    assert result_block["is_error"] is True
    assert "requested permissions to write to" in result_block["content"]
    assert [d["tool_name"] for d in messages[-1]["permission_denials"]] == ["Write"]
    assert not (git_repo / "notes.txt").exists()


def test_the_permission_prompt_tool_stdio_asks_with_a_control_request(claude, git_repo: Path) -> None:
    sim = claude("--permission-prompt-tool", "stdio")
    sim.send(user("/edit notes.txt hello\n/edit other.txt no"))
    asked: list[Message] = []

    def answer(request: Message) -> Message:
        asked.append(request)
        return {"behavior": "allow"} if len(asked) == 1 else {"behavior": "deny", "message": "not that one"}

    messages = until_result(sim, answer)
    assert [a["request"]["subtype"] for a in asked] == ["can_use_tool", "can_use_tool"]
    assert asked[0]["request"]["tool_name"] == "Write"
    assert asked[0]["request"]["input"]["file_path"] == str(git_repo / "notes.txt")
    assert (git_repo / "notes.txt").read_text() == "hello\n"
    assert not (git_repo / "other.txt").exists()
    assert [r["is_error"] for r in tool_results(messages)] == [False, True]
    assert messages[-1]["result"].startswith("Stopped: the edit to other.txt was refused.")


def test_resume_continues_the_session_in_a_new_process(claude) -> None:
    first = claude()
    first.send(user("/echo one"))
    session_id = until_result(first)[-1]["session_id"]
    first.close_stdin()
    assert first.wait() == 0

    second = claude("--resume", session_id)
    second.send(user("/echo two"))
    messages = until_result(second)
    assert messages[0]["session_id"] == session_id
    assert messages[-1]["session_id"] == session_id
    assert "two" in texts(messages)


def test_resume_of_an_unknown_session_exits_1(claude) -> None:
    sim = claude("--resume", "4f1e2d3c-0000-0000-0000-000000000000")
    assert sim.wait() == 1
    assert "No conversation found with session ID: 4f1e2d3c-0000-0000-0000-000000000000" in sim.stderr


def test_not_logged_in_is_an_error_result_then_exit_1(claude) -> None:
    sim = claude()
    sim.send(user("/not-logged-in"))
    messages = until_result(sim)
    assert messages[-2]["error"] == "authentication_failed"
    assert (messages[-1]["is_error"], messages[-1]["result"]) == (True, NOT_LOGGED_IN)
    assert sim.wait() == 1


def test_an_interrupt_control_request_ends_the_turn(claude) -> None:
    sim = claude()
    sim.send(user("/sleep 30\n/echo not reached"))
    sim.recv(lambda m: m["type"] == "system")
    sim.send({"type": "control_request", "request_id": "int-1", "request": {"subtype": "interrupt"}})
    response = sim.recv(lambda m: m["type"] == "control_response")
    assert response["response"] == {"subtype": "success", "request_id": "int-1", "response": {}}
    result = sim.recv(lambda m: m["type"] == "result")
    assert (result["subtype"], result["is_error"]) == ("error_during_execution", True)


def test_initialize_and_unknown_control_requests(claude) -> None:
    sim = claude()
    sim.send(
        {"type": "control_request", "request_id": "a", "request": {"subtype": "initialize", "hooks": None}}
    )
    assert sim.recv()["response"]["subtype"] == "success"
    sim.send({"type": "control_request", "request_id": "b", "request": {"subtype": "rewind_files"}})
    assert sim.recv()["response"] == {
        "subtype": "error",
        "request_id": "b",
        "error": "Unsupported control request subtype: rewind_files",
    }


def test_messages_sent_during_a_turn_run_after_it_and_end_of_input_waits_for_them(claude) -> None:
    sim = claude()
    sim.send(user("/sleep 0.3\n/echo first"))
    sim.send(user("/echo second"))
    sim.close_stdin()
    first, second = until_result(sim), until_result(sim)
    assert "first" in texts(first) and "second" in texts(second)
    assert sim.wait() == 0


def test_a_line_that_is_not_json_ends_the_session_with_an_error(claude) -> None:
    sim = claude()
    sim.send("this is not json")
    assert sim.wait() == 1
    assert "Error parsing streaming input line" in sim.stderr


def test_stream_json_output_without_verbose_is_refused(git_repo: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [SIM, "-p", "--output-format", "stream-json", "hi"],
        cwd=git_repo,
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert b"--output-format=stream-json requires --verbose" in done.stderr


def test_print_mode_with_a_prompt_prints_the_result_as_text_or_json(
    git_repo: Path, env: dict[str, str]
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SIM, "-p", *args], cwd=git_repo, env=env, capture_output=True, text=True, timeout=30
        )

    assert run("/echo hi").stdout == "Done.\n"
    as_json = json.loads(run("--output-format", "json", "/echo hi").stdout)
    assert (as_json["type"], as_json["result"], as_json["is_error"]) == ("result", "Done.", False)
    not_logged_in = run("--not-logged-in", "hello")
    assert (not_logged_in.returncode, not_logged_in.stdout) == (1, NOT_LOGGED_IN + "\n")


def test_offline_is_api_retries_then_a_connection_error_result(claude) -> None:
    sim = claude("--offline")
    sim.send(user("add a note"))
    messages = until_result(sim)
    retries = [m for m in messages if m["type"] == "system" and m.get("subtype") == "api_retry"]
    assert [(m["attempt"], m["max_retries"], m["error_status"]) for m in retries] == [
        (n, 10, None) for n in range(1, 11)
    ]
    assert messages[-2]["type"] == "assistant" and messages[-2]["error"] == "unknown"
    assert (messages[-1]["is_error"], messages[-1]["result"]) == (True, "API Error: Connection error.")


def test_a_usage_limit_is_a_rejected_rate_limit_event_then_an_error_result(claude) -> None:
    sim = claude()
    sim.send(user("/rate-limit"))
    messages = until_result(sim)
    (event,) = [m for m in messages if m["type"] == "rate_limit_event"]
    assert event["rate_limit_info"]["status"] == "rejected"
    assert messages[-2]["error"] == "rate_limit"
    assert messages[-1]["is_error"] and messages[-1]["result"].startswith("Claude usage limit reached.")
