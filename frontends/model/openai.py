"""The OpenAI Responses API (`POST /v1/responses`, streamed), as the Codex CLI uses it: the request read
into a Conversation, a Turn written back as a stream of response events.

    conversation = read_request(body)                    # RequestError for a body it cannot read
    events = stream_events(turn, conversation)           # [(event name, data), …] for sse.encode

A tool call becomes Codex's own tool: `run` → the exec_command function {cmd}; `write` → the apply_patch
custom tool (an `*** Add File` patch) when offered, else a shell command that writes the file; `read` →
exec_command `cat`. A stream always ends with `response.completed`, without which Codex reports "stream
disconnected before completion". A request with no tools, or one asking for a JSON title, is a side
request. Pure.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from typing import Any

from frontends.model.conversation import INVALID_PREFIX, Conversation, RequestError, working_directory
from frontends.model.scenario import ToolCall, Turn
from frontends.model.sse import Event, chunks

__all__ = ["ERRORS", "error_body", "output_items", "read_request", "response_json", "stream_events"]

ERRORS: dict[str, tuple[int, str, str]] = {
    "rate-limit": (429, "rate_limit_exceeded", "Rate limit reached (a scripted fault of corral-model)"),
    "overloaded": (
        529,
        "server_is_overloaded",
        "The server is overloaded (a scripted fault of corral-model)",
    ),
    "server-error": (500, "server_error", "Internal server error (a scripted fault of corral-model)"),
}
"""fault → (HTTP status, error code, message) of the API's error body."""

_MODEL_ITEMS = {"function_call", "custom_tool_call", "local_shell_call", "reasoning", "web_search_call"}
_CONTEXT = re.compile(r"^\s*(<([a-z_]+)>.*</\2>|# AGENTS\.md instructions\b.*)\s*$", re.DOTALL)


def error_body(kind: str) -> tuple[int, dict[str, Any]]:
    status, code, message = ERRORS[kind]
    return status, {"error": {"message": message, "type": code, "code": code, "param": None}}


def read_request(body: Any) -> Conversation:
    """The conversation of a Responses request body."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), str | list):
        raise RequestError('expected a JSON object with "input", a list of items (the OpenAI Responses API)')
    items = body["input"]
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": items}]}]
    items = [i for i in items if isinstance(i, dict)]
    prompt_at = -1
    for index, item in enumerate(items):
        if _is_message(item, "user") and not _CONTEXT.match(_text(item)):
            prompt_at = index
    tools = tuple(str(t.get("name") or t.get("type")) for t in body.get("tools") or () if isinstance(t, dict))
    text_format = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    return Conversation(
        api="openai",
        prompt=_text(items[prompt_at]) if prompt_at >= 0 else "",
        turn=_replies(items[prompt_at + 1 :]),
        cwd=working_directory(*(_text(i) for i in items if _is_message(i, "user"))),
        tools=tools,
        model=str(body.get("model") or "corral-model"),
        stream=bool(body.get("stream", True)),
        side=_side(tools, text_format),
    )


def _side(tools: tuple[str, ...], text_format: Any) -> str:
    if isinstance(text_format, dict) and text_format.get("type") == "json_schema":
        return "title"
    return "" if tools else "no tools"


def _is_message(item: dict[str, Any], role: str) -> bool:
    return item.get("type", "message") == "message" and item.get("role") == role


def _text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n\n".join(str(c.get("text", "")) for c in content or () if isinstance(c, dict) and "text" in c)


def _replies(items: list[dict[str, Any]]) -> int:
    """The model's replies among `items`: runs of model items between the client's (tool outputs), a run
    holding an invalid call not counted."""
    replies, run, invalid = 0, False, False
    for item in [*items, {"type": "end"}]:
        mine = item.get("type") in _MODEL_ITEMS or _is_message(item, "assistant")
        if mine:
            run = True
            invalid = invalid or str(item.get("call_id", "")).startswith(f"call_{INVALID_PREFIX}")
        elif run:
            replies += 0 if invalid else 1
            run, invalid = False, False
    return replies


def output_items(turn: Turn, conversation: Conversation, bad_tool: bool = False) -> list[dict[str, Any]]:
    """The reply's output items: an assistant message, and the turn's tool call."""
    if conversation.side:
        return [_message(_side_text(conversation))]
    text, call = turn.say, None
    if turn.tool is not None:
        call = _call(turn.tool, conversation.tools, bad_tool)
        if call is None:
            offered = ", ".join(conversation.tools) or "none"
            text = (text + "\n\n" if text else "") + (
                f"corral-model: this turn's {turn.tool.kind} needs the exec_command tool, which the request "
                f"does not offer (tools: {offered}); skipping it."
            )
    items = [_message(text)] if text or call is None else []
    return items + ([call] if call is not None else [])


def _side_text(conversation: Conversation) -> str:
    return json.dumps({"title": "corral-model session"}) if conversation.side == "title" else "corral-model"


def _message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_" + uuid.uuid4().hex[:24],
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call(tool: ToolCall, offered: tuple[str, ...], bad_tool: bool) -> dict[str, Any] | None:
    call_id = f"call_{INVALID_PREFIX if bad_tool else ''}{uuid.uuid4().hex[:24]}"
    if tool.kind == "write" and "apply_patch" in offered and not bad_tool:
        lines = "".join(f"+{line}\n" for line in tool.content.splitlines()) or "+\n"
        patch = f"*** Begin Patch\n*** Add File: {tool.path}\n{lines}*** End Patch\n"
        return {
            "type": "custom_tool_call",
            "id": "ctc_" + call_id,
            "call_id": call_id,
            "name": "apply_patch",
            "input": patch,
            "status": "completed",
        }
    if "exec_command" not in offered:
        return None
    # Codex refuses a `justification` without `sandbox_permissions`: the description is not sent.
    arguments: dict[str, Any] = {"workdir": "."} if bad_tool else {"cmd": _command(tool)}
    return {
        "type": "function_call",
        "id": "fc_" + call_id,
        "call_id": call_id,
        "name": "exec_command",
        "arguments": json.dumps(arguments),
        "status": "completed",
    }


def _command(tool: ToolCall) -> str:
    if tool.kind == "run":
        return tool.command
    path = shlex.quote(tool.path)
    if tool.kind == "read":
        return f"cat -- {path}"
    folder = tool.path.rpartition("/")[0]
    write = f"printf '%s' {shlex.quote(tool.content)} > {path}"
    return f"mkdir -p -- {shlex.quote(folder)} && {write}" if folder else write


def response_json(turn: Turn, conversation: Conversation, bad_tool: bool = False) -> dict[str, Any]:
    """The whole reply of a non-streaming request: the response that `response.completed` carries."""
    return stream_events(turn, conversation, bad_tool)[-1][1]["response"]


def stream_events(turn: Turn, conversation: Conversation, bad_tool: bool = False) -> list[Event]:
    """The SSE events of a streamed reply: created, each item added/delta/done, completed."""
    response_id = "resp_" + uuid.uuid4().hex[:24]
    items = output_items(turn, conversation, bad_tool)
    base = {"id": response_id, "object": "response", "model": conversation.model, "created_at": 0}
    events: list[Event] = [
        ("response.created", {"response": {**base, "status": "in_progress", "output": []}})
    ]
    for index, item in enumerate(items):
        events.append(
            ("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress"}})
        )
        if item["type"] == "message":
            text = item["content"][0]["text"]
            events += [
                (
                    "response.output_text.delta",
                    {"item_id": item["id"], "output_index": index, "content_index": 0, "delta": piece},
                )
                for piece in chunks(text)
            ]
        elif item["type"] == "function_call":
            events += [
                (
                    "response.function_call_arguments.delta",
                    {"item_id": item["id"], "output_index": index, "delta": piece},
                )
                for piece in chunks(item["arguments"])
            ]
        else:
            events += [
                (
                    "response.custom_tool_call_input.delta",
                    {"item_id": item["id"], "output_index": index, "delta": piece},
                )
                for piece in chunks(item["input"])
            ]
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    output_tokens = max(1, len(json.dumps(items)) // 4)
    input_tokens = max(1, len(conversation.prompt) // 4)
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }
    events.append(
        ("response.completed", {"response": {**base, "status": "completed", "output": items, "usage": usage}})
    )
    return [(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events)]
