"""The Anthropic Messages API (`POST /v1/messages`), as Claude Code uses it: the request read into a
Conversation, a Turn written back as a message — streamed (SSE events) or whole.

    conversation = read_request(body)                       # RequestError for a body it cannot read
    events = stream_events(turn, conversation, bad_tool=False)  # [(event name, data), …] for sse.encode
    message = message_json(turn, conversation)              # the non-streaming reply

A tool call becomes Claude Code's own tool: `write` → Write {file_path, content} (absolute: Claude Code
refuses a relative path; the working directory comes from its system prompt), `run` → Bash {command,
description}, `read` → Read {file_path}. A turn whose tool the request does not offer is answered with a
text that says so. A request that offers no Bash is a side request (a title, a quota check). Pure.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from frontends.model.conversation import INVALID_PREFIX, Conversation, RequestError, working_directory
from frontends.model.scenario import ToolCall, Turn
from frontends.model.sse import Event, chunks

__all__ = [
    "ERRORS",
    "TOOL_NAMES",
    "content_blocks",
    "error_body",
    "message_json",
    "read_request",
    "stream_events",
]

TOOL_NAMES = {"write": "Write", "run": "Bash", "read": "Read"}

ERRORS: dict[str, tuple[int, str, str]] = {
    "rate-limit": (429, "rate_limit_error", "Rate limited by corral-model (a scripted fault)"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server-error": (500, "api_error", "Internal server error (a scripted fault of corral-model)"),
}
"""fault → (HTTP status, error type, message) of the API's error body."""

_REMINDER = "<system-reminder>"


def error_body(kind: str) -> tuple[int, dict[str, Any]]:
    status, error_type, message = ERRORS[kind]
    return status, {"type": "error", "error": {"type": error_type, "message": message}}


def read_request(body: Any) -> Conversation:
    """The conversation of a Messages request body."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise RequestError('expected a JSON object with "messages", a list (the Anthropic Messages API)')
    messages = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") in ("user", "assistant")]
    prompt_at = -1
    for index, message in enumerate(messages):
        if message["role"] == "user" and _is_prompt(message.get("content")):
            prompt_at = index
    prompt = _text(messages[prompt_at].get("content")) if prompt_at >= 0 else ""
    turn = sum(1 for m in messages[prompt_at + 1 :] if m["role"] == "assistant" and not _invalid(m))
    tools = tuple(t["name"] for t in body.get("tools") or () if isinstance(t, dict) and "name" in t)
    system = body.get("system", "")
    system_text = system if isinstance(system, str) else _text(system)
    return Conversation(
        api="anthropic",
        prompt=prompt,
        turn=turn,
        cwd=working_directory(system_text, *(_text(m.get("content"), True) for m in messages)),
        tools=tools,
        model=str(body.get("model") or "corral-model"),
        stream=bool(body.get("stream")),
        side="" if "Bash" in tools else "no Bash tool",
    )


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or () if isinstance(b, dict)]


def _is_prompt(content: Any) -> bool:
    """A user message that is a prompt: no tool results, and some text that is not a system reminder."""
    blocks = _blocks(content)
    if any(b.get("type") == "tool_result" for b in blocks):
        return False
    return any(
        b.get("type") == "text" and not str(b.get("text", "")).lstrip().startswith(_REMINDER) for b in blocks
    )


def _text(content: Any, reminders: bool = False) -> str:
    texts = [str(b.get("text", "")) for b in _blocks(content) if b.get("type") == "text"]
    return "\n\n".join(t for t in texts if reminders or not t.lstrip().startswith(_REMINDER))


def _invalid(message: dict[str, Any]) -> bool:
    return any(
        b.get("type") == "tool_use" and str(b.get("id", "")).startswith(f"toolu_{INVALID_PREFIX}")
        for b in _blocks(message.get("content"))
    )


def content_blocks(turn: Turn, conversation: Conversation, bad_tool: bool = False) -> list[dict[str, Any]]:
    """The reply's content: a text block, and a tool_use block for the turn's tool call."""
    text = turn.say
    tool = turn.tool
    if tool is not None and TOOL_NAMES[tool.kind] not in conversation.tools and not conversation.side:
        offered = ", ".join(conversation.tools) or "none"
        text = (text + "\n\n" if text else "") + (
            f"corral-model: this turn calls the {TOOL_NAMES[tool.kind]} tool, which the request does not "
            f"offer (tools: {offered}); skipping it."
        )
        tool = None
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or tool is None else []
    if tool is not None:
        prefix = f"toolu_{INVALID_PREFIX}" if bad_tool else "toolu_"
        blocks.append(
            {
                "type": "tool_use",
                "id": prefix + uuid.uuid4().hex[:24],
                "name": TOOL_NAMES[tool.kind],
                "input": _bad_input(tool) if bad_tool else _tool_input(tool, conversation.cwd),
            }
        )
    return blocks


def _tool_input(tool: ToolCall, cwd: str) -> dict[str, Any]:
    if tool.kind == "run":
        return {"command": tool.command, "description": tool.description or "Run a command"}
    path = tool.path if os.path.isabs(tool.path) or not cwd else os.path.join(cwd, tool.path)
    return {"file_path": path, "content": tool.content} if tool.kind == "write" else {"file_path": path}


def _bad_input(tool: ToolCall) -> dict[str, Any]:
    """The tool's input with its required fields missing: the CLI rejects it and tells the model."""
    return (
        {"description": tool.description or "an invalid call"} if tool.kind == "run" else {"path": tool.path}
    )


def _usage(conversation: Conversation, blocks: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "input_tokens": max(1, len(conversation.prompt) // 4),
        "output_tokens": max(1, len(json.dumps(blocks)) // 4),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _stop_reason(blocks: list[dict[str, Any]]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def message_json(turn: Turn, conversation: Conversation, bad_tool: bool = False) -> dict[str, Any]:
    """The whole reply of a non-streaming request."""
    blocks = content_blocks(turn, conversation, bad_tool)
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": conversation.model,
        "content": blocks,
        "stop_reason": _stop_reason(blocks),
        "stop_sequence": None,
        "usage": _usage(conversation, blocks),
    }


def stream_events(turn: Turn, conversation: Conversation, bad_tool: bool = False) -> list[Event]:
    """The SSE events of a streamed reply, in the order Claude Code reads them."""
    whole = message_json(turn, conversation, bad_tool)
    blocks = whole.pop("content")
    start = {**whole, "content": [], "stop_reason": None, "usage": {**whole["usage"], "output_tokens": 1}}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in chunks(block["text"])]
        else:
            opening = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in chunks(json.dumps(block["input"]))
            ]
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": whole["usage"]["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events
