"""The real `corral-model` process, spoken to over HTTP as the agent CLIs speak to it: both APIs, the side
requests, the lifecycle scenario, every model fault as a client observes it, the request log, and the
command line's errors."""

from __future__ import annotations

import http.client
import json
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from protocols.prompts import planner_prompt
from tests.disk_kit import SmallDisk
from tests.model_kit import MODEL, ModelServer, parse_sse

pytestmark = pytest.mark.timeout(60)

SCENARIO = """\
[[script]]
prompt = "^go"

[[script.turns]]
say = "Running it."
run = "echo hi"
description = "Say hi"

[[script.turns]]
say = "Done here."
"""

TOOLS = [{"name": n, "input_schema": {}} for n in ("Bash", "Write", "Read")]
SYSTEM = "# Environment\n - Primary working directory: /work/repo\n"


def claude(*messages: dict[str, Any], stream: bool = True) -> dict[str, Any]:
    return {
        "model": "claude-opus-4-8",
        "system": SYSTEM,
        "tools": TOOLS,
        "stream": stream,
        "max_tokens": 64000,
        "messages": list(messages),
    }


def user(value: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": value}]}


def answered(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The assistant message a stream carried, rebuilt as Claude Code rebuilds it, for the next request."""
    content: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_start":
            content.append(dict(data["content_block"]))
        elif name == "content_block_delta" and data["delta"]["type"] == "text_delta":
            content[data["index"]]["text"] += data["delta"]["text"]
        elif name == "content_block_delta":
            partial[data["index"]] = partial.get(data["index"], "") + data["delta"]["partial_json"]
    for index, text in partial.items():
        content[index]["input"] = json.loads(text)
    return {"role": "assistant", "content": content}


def result_of(message: dict[str, Any], output: str = "ok") -> dict[str, Any]:
    (call,) = [b for b in message["content"] if b["type"] == "tool_use"]
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": output}],
    }


def tool_input(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    (call,) = [b for b in answered(events)["content"] if b["type"] == "tool_use"]
    return {"name": call["name"], **call["input"]}


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    return path


def test_lifecycle_plays_a_planner_over_two_requests_and_logs_them(tmp_path: Path) -> None:
    log = tmp_path / "model.jsonl"
    prompt = planner_prompt("fix-login", "Fix the login form", "Make the form work.")
    with ModelServer([], log=log) as model:
        status, headers, events = model.post_stream("/v1/messages", claude(user(prompt)))
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        assert [n for n, _ in events][-1] == "message_stop"
        write = tool_input(events)
        assert write["name"] == "Write" and write["file_path"] == "/work/repo/.corral/plans/fix-login.md"
        assert write["content"].startswith("# Fix the login form\n")
        first = answered(events)
        _, _, events = model.post_stream("/v1/messages", claude(user(prompt), first, result_of(first)))
        run = tool_input(events)
        assert run["name"] == "Bash" and shlex.split(run["command"])[:5] == [
            "corral",
            "signal",
            "emit",
            "planner_finished",
            "fix-login",
        ]
        entries = model.entries()
    model_entries = [e for e in entries if e["path"] == "/v1/messages"]
    assert [(e["role"], e["turn"], e["status"], e["tool"]["kind"]) for e in model_entries] == [
        ("planner", 0, 200, "write"),
        ("planner", 1, 200, "run"),
    ]
    assert model_entries[0]["prompt"] == "# Plan task fix-login: Fix the login form"


def test_a_scripted_conversation_and_a_retry_that_gets_the_same_turn(scenario: Path) -> None:
    with ModelServer(["--scenario", str(scenario)]) as model:
        _, _, events = model.post_stream("/v1/messages", claude(user("go on")))
        assert tool_input(events) == {"name": "Bash", "command": "echo hi", "description": "Say hi"}
        _, _, again = model.post_stream("/v1/messages", claude(user("go on")))
        assert tool_input(again)["command"] == "echo hi"  # the same turn: nothing counted on the server
        first = answered(events)
        status, _, whole = model.post_json(
            "/v1/messages", claude(user("go on"), first, result_of(first), stream=False)
        )
        assert status == 200 and whole["content"] == [{"type": "text", "text": "Done here."}]
        assert whole["stop_reason"] == "end_turn"
        _, _, other = model.post_json("/v1/messages", claude(user("something else"), stream=False))
        assert "no script of the scenario matches" in other["content"][0]["text"]


def test_the_openai_responses_stream_for_codex(scenario: Path) -> None:
    body = {
        "model": "gpt-5.5",
        "stream": True,
        "tools": [{"type": "function", "name": "exec_command"}],
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}],
    }
    with ModelServer(["--scenario", str(scenario)]) as model:
        status, _, events = model.post_stream("/v1/responses", body)
        assert status == 200 and events[-1][0] == "response.completed"
        items = events[-1][1]["response"]["output"]
        assert [i["type"] for i in items] == ["message", "function_call"]
        assert json.loads(items[1]["arguments"]) == {"cmd": "echo hi"}
        body["input"] += [
            items[1],
            {"type": "function_call_output", "call_id": items[1]["call_id"], "output": "hi"},
        ]
        _, _, events = model.post_stream("/v1/responses", body)
        (done,) = events[-1][1]["response"]["output"]
        assert done["content"][0]["text"] == "Done here."


def test_side_requests_and_bad_requests_get_clear_answers() -> None:
    with ModelServer([]) as model:
        assert model.request("HEAD", "/")[0] == 200
        status, _, data = model.request("GET", "/v1/models")
        assert status == 200 and "claude-opus-4-8" in [m["id"] for m in json.loads(data)["data"]]
        status, _, data = model.request("GET", "/v2/nothing")
        assert status == 404 and "no route GET /v2/nothing" in json.loads(data)["error"]["message"]
        status, _, data = model.request("GET", "/v1/messages")
        assert status == 405 and "does not answer GET /v1/messages" in json.loads(data)["error"]["message"]
        status, _, data = model.request("POST", "/v1/messages", raw=b"{not json")
        assert status == 400 and "not JSON" in json.loads(data)["error"]["message"]
        status, _, data = model.post_json("/v1/messages", {"model": "x"})
        assert status == 400 and '"messages"' in data["error"]["message"]
        status, _, side = model.post_json(
            "/v1/messages", {**claude(user("a title please"), stream=False), "tools": []}
        )
        assert status == 200 and side["content"] == [{"type": "text", "text": "corral-model"}]


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        ("rate-limit,retry-after=2,times=1", 429, "rate_limit_error"),
        ("overloaded,times=1", 529, "overloaded_error"),
        ("server-error,times=1", 500, "api_error"),
    ],
)
def test_status_faults_then_the_fault_clears(
    scenario: Path, fault: str, status: int, error_type: str
) -> None:
    with ModelServer(["--scenario", str(scenario), "--fault", fault]) as model:
        got, headers, body = model.post_json("/v1/messages", claude(user("go"), stream=False))
        assert (got, body["type"], body["error"]["type"]) == (status, "error", error_type)
        if status == 429:
            assert headers["retry-after"] == "2"
        got, _, body = model.post_json("/v1/messages", claude(user("go"), stream=False))
        assert got == 200 and body["content"][-1]["name"] == "Bash"


def test_an_openai_rate_limit_has_the_openai_error_shape() -> None:
    body = {"model": "gpt-5.5", "tools": [{"type": "function", "name": "exec_command"}], "input": "go"}
    with ModelServer(["--fault", "rate-limit"]) as model:
        status, headers, data = model.post_json("/v1/responses", body)
    assert status == 429 and headers["retry-after"] == "1" and data["error"]["code"] == "rate_limit_exceeded"


def test_a_cut_stream_ends_mid_message(scenario: Path) -> None:
    with ModelServer(["--scenario", str(scenario), "--fault", "cut,times=2"]) as model:
        conn = model.connection()
        conn.request("POST", "/v1/messages", body=json.dumps(claude(user("go"))))
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
        conn.close()
        names = [n for n, _ in parse_sse(caught.value.partial)]
        assert names[0] == "message_start" and "content_block_delta" in names and "message_stop" not in names
        with pytest.raises(http.client.RemoteDisconnected):  # a whole reply: the connection ends, no reply
            model.request("POST", "/v1/messages", claude(user("go"), stream=False))
        _, _, events = model.post_stream("/v1/messages", claude(user("go")))  # cleared: a whole message
        assert events[-1][0] == "message_stop"
    assert "Traceback" not in model.stderr and "Error" not in model.stderr


def test_a_slow_stream_spaces_its_events(scenario: Path) -> None:
    with ModelServer(["--scenario", str(scenario), "--fault", "slow,delay=0.05"]) as model:
        began = time.monotonic()
        _, _, events = model.post_stream("/v1/messages", claude(user("go")))
        took = time.monotonic() - began
    assert events[-1][0] == "message_stop"
    assert took >= 0.05 * len(events)  # a lower bound the server's sleeps guarantee, not a timing goal


def test_a_stall_sends_headers_then_nothing_while_other_requests_are_answered(scenario: Path) -> None:
    with ModelServer(["--scenario", str(scenario), "--fault", "stall,times=1"]) as model:
        conn = model.connection(timeout=1.0)
        conn.request("POST", "/v1/messages", body=json.dumps(claude(user("go"))))
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("content-type").startswith("text/event-stream")
        with pytest.raises(TimeoutError):
            response.read1(1)
        _, _, events = model.post_stream("/v1/messages", claude(user("go")))
        assert events[-1][0] == "message_stop"
        conn.close()
        assert model.proc is not None
        model.proc.send_signal(signal.SIGTERM)  # a stall does not hold up the server's exit
        assert model.proc.wait(timeout=15) == 0


def test_a_bad_tool_call_is_invalid_and_its_turn_is_played_again(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        SCENARIO.replace('description = "Say hi"', 'description = "Say hi"\nfault = "bad-tool,times=1"')
    )
    with ModelServer(["--scenario", str(path)]) as model:
        _, _, events = model.post_stream("/v1/messages", claude(user("go")))
        bad = answered(events)
        (call,) = [b for b in bad["content"] if b["type"] == "tool_use"]
        assert call["id"].startswith("toolu_invalid_") and "command" not in call["input"]
        _, _, events = model.post_stream(
            "/v1/messages", claude(user("go"), bad, result_of(bad, "InputValidationError"))
        )
        assert tool_input(events)["command"] == "echo hi"


def test_the_global_fault_is_switched_while_the_server_runs(scenario: Path) -> None:
    with ModelServer(["--scenario", str(scenario)]) as model:
        status, _, body = model.request("PUT", "/_model/fault", {"fault": "overloaded"})
        assert (status, json.loads(body)) == (200, {"fault": "overloaded"})
        assert model.post_json("/v1/messages", claude(user("go"), stream=False))[0] == 529
        assert model.post_json("/v1/messages", claude(user("go"), stream=False))[0] == 529
        status, _, body = model.request("PUT", "/_model/fault", {"fault": "melt"})
        assert status == 400 and "unknown fault 'melt'" in json.loads(body)["error"]["message"]
        model.request("PUT", "/_model/fault", {"fault": "none"})
        assert model.post_json("/v1/messages", claude(user("go"), stream=False))[0] == 200
        status, _, body = model.request("GET", "/_model/requests")
        logged = [(e.get("fault"), e["status"]) for e in json.loads(body) if e["path"] == "/v1/messages"]
        assert logged == [("overloaded", 529), ("overloaded", 529), (None, 200)]


def test_a_full_disk_under_the_log_is_said_once_and_requests_are_still_answered(
    scenario: Path, disk: SmallDisk
) -> None:
    with ModelServer(["--scenario", str(scenario)], log=disk.path / "model.jsonl") as model:
        assert model.post_json("/v1/messages", claude(user("go"), stream=False))[0] == 200
        disk.fill()
        for _ in range(40):  # more lines than the log file's last page holds
            assert model.post_json("/v1/messages", claude(user("go"), stream=False))[0] == 200
        _, _, body = model.request("GET", "/_model/requests")
        assert [e["turn"] for e in json.loads(body) if e["path"] == "/v1/messages"] == [0] * 41
    assert model.stderr.count("cannot write the log") == 1 and "No space left" in model.stderr
    assert "Traceback" not in model.stderr


def test_it_listens_on_127_0_0_1_only() -> None:
    with ModelServer([]) as model:
        assert model.url == f"http://127.0.0.1:{model.port}"
        with socket.create_connection(("127.0.0.1", model.port), timeout=5):
            pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", model.port), timeout=5).close()


def run_model(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MODEL, *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )


def test_a_bad_scenario_file_is_a_usage_error_naming_the_file_and_turn(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[script]]\nturns = [{say = "hi"}, {run = "x", write = {path = "a", content = "b"}}]\n')
    done = run_model("--scenario", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}: script 1, turn 2: one tool call per turn, not write and run" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "melt"], "--fault: unknown fault 'melt'"),
        (["--port", "70000"], "--port 70000: expected 0"),
        (["--scenario", "/nonexistent/s.toml"], "cannot read scenario /nonexistent/s.toml"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(args: list[str], message: str) -> None:
    done = run_model(*args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_exits_1_with_the_reason() -> None:
    with ModelServer([]) as model:
        done = run_model("--port", str(model.port))
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{model.port}" in done.stderr


def test_help_lists_the_flags_and_faults() -> None:
    done = run_model("--help")
    assert done.returncode == 0
    for word in ("--port", "--scenario", "--fault", "--log", "rate-limit", "stall", "bad-tool"):
        assert word in done.stdout
