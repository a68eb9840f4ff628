"""The two SDK transports decoded into one set of events; never an exception for what comes off the wire."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from protocols.sdk import (
    RATE_LIMITED,
    UNREACHABLE,
    AgentText,
    Approval,
    CodexClient,
    Connected,
    ResumeFailed,
    SdkError,
    SessionStarted,
    TurnCompleted,
    TurnStarted,
    Unhandled,
    claude_argv_flags,
    claude_control_response,
    claude_interrupt,
    claude_user_message,
    decode_claude,
)


def line(obj: object) -> bytes:
    return msgspec.json.encode(obj) + b"\n"


def sent(data: bytes) -> dict:
    return msgspec.json.decode(data)


def test_codex_handshake_thread_and_turn() -> None:
    client = CodexClient()
    init = sent(client.initialize())
    assert init["method"] == "initialize" and init["params"]["clientInfo"]["name"] == "corral"
    assert "jsonrpc" not in init  # codex omits it on the wire
    assert client.decode(line({"id": init["id"], "result": {"userAgent": "x"}})) == [Connected()]
    assert sent(client.initialized()) == {"method": "initialized"}
    start = sent(client.thread_start("/w", fast=True))
    assert start["params"] == {
        "cwd": "/w",
        "approvalPolicy": "on-request",
        "sandbox": "workspace-write",
        "serviceTier": "fast",
    }
    assert client.decode(line({"id": start["id"], "result": {"thread": {"id": "thr_1"}}})) == [
        SessionStarted("thr_1")
    ]
    turn = sent(client.send_text("do it"))
    assert turn["method"] == "turn/start"
    assert turn["params"] == {"threadId": "thr_1", "input": [{"type": "text", "text": "do it"}]}
    assert client.decode(line({"method": "turn/started", "params": {"turn": {"id": "t1"}}})) == [
        TurnStarted("t1")
    ]
    steer = sent(client.send_text("also this"))
    assert steer["method"] == "turn/steer" and steer["params"]["turnId"] == "t1"
    delta = {"method": "item/agentMessage/delta", "params": {"delta": "hel"}}
    assert client.decode(line(delta)) == [AgentText("hel")]
    done = {"method": "turn/completed", "params": {"turn": {"id": "t1", "status": "completed"}}}
    assert client.decode(line(done)) == [TurnCompleted("t1", "completed")]
    assert sent(client.send_text("next"))["method"] == "turn/start"


def test_codex_approvals_are_answered_by_request_id() -> None:
    client = CodexClient()
    request = {
        "id": 42,
        "method": "item/commandExecution/requestApproval",
        "params": {"threadId": "t", "command": "npm test"},
    }
    (approval,) = client.decode(line(request))
    assert approval == Approval(42, "command", "npm test")
    assert sent(client.answer_approval(approval, True)) == {"id": 42, "result": {"decision": "accept"}}
    assert sent(client.answer_approval(approval, False)) == {"id": 42, "result": {"decision": "decline"}}
    perms = {
        "id": "p1",
        "method": "item/permissions/requestApproval",
        "params": {"permissions": {"network": {}}},
    }
    (approval,) = client.decode(line(perms))
    assert sent(client.answer_approval(approval, True))["result"] == {
        "permissions": {"network": {}},
        "scope": "turn",
    }
    assert sent(client.answer_approval(approval, False))["result"] == {"permissions": {}, "scope": "turn"}


def test_codex_unknown_server_request_gets_method_not_found() -> None:
    (event,) = CodexClient().decode(line({"id": 7, "method": "item/tool/call", "params": {}}))
    assert isinstance(event, Unhandled)
    assert sent(event.reply) == {
        "id": 7,
        "error": {"code": -32601, "message": "item/tool/call not supported"},
    }


def test_codex_errors_and_failed_resume() -> None:
    client = CodexClient()
    resume = sent(client.thread_resume("thr_old"))
    failed = client.decode(line({"id": resume["id"], "error": {"code": 1, "message": "thread not found"}}))
    assert failed == [ResumeFailed("thread not found")]
    init = sent(client.initialize())
    (err,) = client.decode(line({"id": init["id"], "error": {"code": 1, "message": "Not logged in"}}))
    assert err == SdkError("initialize failed: Not logged in", fatal=True)
    note = {"method": "error", "params": {"error": {"message": "stream disconnected"}, "willRetry": True}}
    assert client.decode(line(note)) == [
        SdkError("stream disconnected", fatal=False, retrying=True, cause=UNREACHABLE)
    ]


def test_codex_error_notifications_say_what_they_mean() -> None:
    client = CodexClient()

    def error(message: str, info: object = None, retry: bool = True) -> SdkError:
        params = {"threadId": "t", "turnId": "u", "willRetry": retry}
        params["error"] = {"message": message, "codexErrorInfo": info, "additionalDetails": None}
        (event,) = client.decode(line({"method": "error", "params": params}))
        return event

    assert error("Reconnecting... 2/5") == SdkError("Reconnecting... 2/5", retrying=True, cause=UNREACHABLE)
    waiting = error("Reconnecting... waiting for network")
    assert waiting.retrying and waiting.stalled and waiting.cause == UNREACHABLE
    assert error("x", {"responseStreamDisconnected": {"httpStatusCode": 502}}).cause == UNREACHABLE
    limit = error("You've hit your usage limit.", "UsageLimitExceeded", retry=False)
    assert (limit.fatal, limit.retrying, limit.cause) == (True, False, RATE_LIMITED)
    assert error("Not logged in", "Unauthorized", retry=False).cause == "not logged in"
    assert error("something odd", "Other").cause == "the agent reports an error"


def test_a_refused_turn_start_fails_the_turn() -> None:
    client = CodexClient()
    client.thread_id = "t"
    request = sent(client.send_text("hi"))
    refused = {"id": request["id"], "error": {"code": -32600, "message": "thread not found: t"}}
    assert client.decode(line(refused)) == [
        TurnCompleted(status="failed", error="turn/start failed: thread not found: t")
    ]


def test_claude_api_retries_rate_limits_and_api_errors_are_errors_with_a_cause() -> None:
    retry = {
        "type": "system",
        "subtype": "api_retry",
        "attempt": 2,
        "max_retries": 10,
        "retry_delay_ms": 1200,
        "error_status": None,
        "error": "unknown",
        "session_id": "s",
    }
    assert decode_claude(line(retry)) == [SdkError("API retry 2/10", retrying=True, cause=UNREACHABLE)]
    busy = {**retry, "error_status": 529, "error": "server_error"}
    assert decode_claude(line(busy)) == [
        SdkError(
            "API retry 2/10 after HTTP 529 (server_error)", retrying=True, cause="the model API is failing"
        )
    ]
    rejected = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": "rejected", "rateLimitType": "five_hour", "resetsAt": 1700000000},
    }
    assert decode_claude(line(rejected)) == [
        SdkError("usage limit reached (five hour), resets at 22:13 UTC", cause=RATE_LIMITED)
    ]
    allowed = {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}}
    assert isinstance(decode_claude(line(allowed))[0], Unhandled)
    said = {
        "type": "assistant",
        "error": "rate_limit",
        "message": {"content": [{"type": "text", "text": "API Error: Rate limit reached"}]},
    }
    assert decode_claude(line(said)) == [
        AgentText("API Error: Rate limit reached"),
        SdkError("API Error: Rate limit reached", cause=RATE_LIMITED),
    ]


def test_claude_turns_are_interrupted_by_a_control_request() -> None:
    assert sent(claude_interrupt("int_1")) == {
        "type": "control_request",
        "request_id": "int_1",
        "request": {"subtype": "interrupt"},
    }


def test_claude_stream_json() -> None:
    assert claude_argv_flags("s1")[-2:] == ["--resume", "s1"]
    assert sent(claude_user_message("hi"))["message"]["content"] == [{"type": "text", "text": "hi"}]
    assert decode_claude(line({"type": "system", "subtype": "init", "session_id": "s1"})) == [
        SessionStarted("s1")
    ]
    assistant = {
        "type": "assistant",
        "message": {"content": [{"type": "text", "text": "ok"}, {"type": "tool_use"}]},
    }
    assert decode_claude(line(assistant)) == [AgentText("ok")]
    result = {"type": "result", "is_error": True, "result": "Invalid API key · Please run /login"}
    assert decode_claude(line(result)) == [
        TurnCompleted(
            status="failed",
            error="Invalid API key · Please run /login",
            text="Invalid API key · Please run /login",
        )
    ]
    assert decode_claude(b"Error: not logged in\n") == [SdkError("Error: not logged in")]


def test_claude_permission_requests_come_to_corral_and_are_answered() -> None:
    assert claude_argv_flags()[-2:] == ["--permission-prompt-tool", "stdio"]
    request = {
        "type": "control_request",
        "request_id": "r1",
        "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "npm test"}},
    }
    (approval,) = decode_claude(line(request))
    assert approval == Approval("r1", "command", "Bash(npm test)", {"command": "npm test"})
    allow = sent(claude_control_response(approval, True))
    assert allow["response"] == {
        "subtype": "success",
        "request_id": "r1",
        "response": {"behavior": "allow", "updatedInput": {"command": "npm test"}},
    }
    deny = sent(claude_control_response(approval, False))["response"]["response"]
    assert deny["behavior"] == "deny"
    other = {"type": "control_request", "request_id": "r2", "request": {"subtype": "mcp_message"}}
    (event,) = decode_claude(line(other))
    assert sent(event.reply)["response"]["subtype"] == "error"


@given(data=st.binary(max_size=300))
def test_any_bytes_decode_without_raising(data: bytes) -> None:
    CodexClient().decode(data)
    decode_claude(data)


@given(
    obj=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: (
            st.lists(c, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["id", "method", "params", "result", "error", "type", "turn", "message", "delta"]
                ),
                c,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_json_decodes_without_raising(obj: object) -> None:
    CodexClient().decode(line(obj))
    decode_claude(line(obj))


def test_odd_approval_params_still_make_an_approval() -> None:
    odd = {"id": 1, "method": "item/permissions/requestApproval", "params": {"permissions": 5}}
    (approval,) = CodexClient().decode(line(odd))
    assert approval.summary == "item/permissions/requestApproval"
