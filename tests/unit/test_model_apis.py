"""corral-model's two APIs, pure: a request read into a conversation (its prompt, its turn counted from
the conversation so a retry is the same turn), the turn chosen, and the reply encoded as each CLI reads it."""

from __future__ import annotations

import json
from typing import Any

from frontends.model import anthropic, openai
from frontends.model.conversation import Conversation
from frontends.model.scenario import Scenario, Script, ToolCall, Turn
from frontends.model.script import DONE, choose
from frontends.model.sse import chunks, cut_point, encode

CLAUDE_TOOLS = [{"name": n, "input_schema": {}} for n in ("Bash", "Write", "Read", "Edit")]
CODEX_TOOLS = [{"type": "function", "name": "exec_command"}, {"type": "custom", "name": "apply_patch"}]
SYSTEM = [
    {"type": "text", "text": "# Environment\n - Primary working directory: /work/repo\n - Platform: linux"}
]
REMINDER = {"type": "text", "text": "<system-reminder>\nToday's date is …\n</system-reminder>"}


def claude_body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-opus-4-8",
        "system": SYSTEM,
        "tools": CLAUDE_TOOLS,
        "stream": True,
        "messages": list(messages),
        **extra,
    }


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(call_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call_id, "name": "Bash", "input": {}}],
    }


def tool_result(call_id: str) -> dict[str, Any]:
    return user({"type": "tool_result", "tool_use_id": call_id, "content": "ok", "is_error": False})


def test_claude_turn_is_the_replies_since_the_latest_prompt() -> None:
    body = claude_body(
        user(REMINDER, text("do it")),
        tool_use("toolu_1"),
        tool_result("toolu_1"),
        tool_use("toolu_2"),
        tool_result("toolu_2"),
    )
    conversation = anthropic.read_request(body)
    assert (conversation.prompt, conversation.turn, conversation.cwd) == ("do it", 2, "/work/repo")
    assert not conversation.side and conversation.stream
    # a new prompt starts counting again; a system entry among the messages is ignored
    later = claude_body(
        *body["messages"],
        {"role": "assistant", "content": [text("done")]},
        user(text("and again")),
        {"role": "system", "content": "x"},
    )
    assert (anthropic.read_request(later).prompt, anthropic.read_request(later).turn) == ("and again", 0)


def test_claude_an_invalid_call_the_model_made_is_not_counted_so_its_turn_is_played_again() -> None:
    body = claude_body(user(text("do it")), tool_use("toolu_invalid_abc"), tool_result("toolu_invalid_abc"))
    assert anthropic.read_request(body).turn == 0


def test_claude_a_request_without_bash_is_a_side_request() -> None:
    body = claude_body(user(text("Write a title")), tools=[])
    assert anthropic.read_request(body).side


def test_claude_stream_of_a_tool_call_is_in_the_order_claude_code_reads_it() -> None:
    conversation = anthropic.read_request(claude_body(user(text("go"))))
    turn = Turn("Writing.", ToolCall("write", path="a/b.txt", content="x\n"))
    events = anthropic.stream_events(turn, conversation)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == 2 == names.count("content_block_stop")
    tool_start = [d for n, d in events if n == "content_block_start"][1]["content_block"]
    assert tool_start["type"] == "tool_use" and tool_start["name"] == "Write" and tool_start["input"] == {}
    partial = "".join(
        d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 1
    )
    assert json.loads(partial) == {"file_path": "/work/repo/a/b.txt", "content": "x\n"}  # absolute, in cwd
    said = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta" and d["index"] == 0)
    assert said == "Writing."
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_claude_whole_message_and_a_bad_tool_call() -> None:
    conversation = anthropic.read_request(claude_body(user(text("go")), stream=False))
    message = anthropic.message_json(Turn(tool=ToolCall("run", command="ls")), conversation, bad_tool=True)
    (call,) = message["content"]
    assert message["stop_reason"] == "tool_use" and call["id"].startswith("toolu_invalid_")
    assert "command" not in call["input"]
    done = anthropic.message_json(Turn("bye"), conversation)
    assert done["stop_reason"] == "end_turn" and done["content"] == [text("bye")]


def test_claude_a_tool_the_request_does_not_offer_is_said_not_called() -> None:
    conversation = anthropic.read_request(claude_body(user(text("go")), tools=[{"name": "Bash"}]))
    (block,) = anthropic.content_blocks(Turn(tool=ToolCall("read", path="x")), conversation)
    assert block["type"] == "text" and "Read tool" in block["text"]


def codex_body(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-5.5",
        "instructions": "…",
        "tools": CODEX_TOOLS,
        "stream": True,
        "input": list(items),
        **extra,
    }


def message(role: str, value: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": value}]}


def call(call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "exec_command", "arguments": "{}"}


def output(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "ok"}


def test_codex_turn_counts_replies_after_the_prompt_skipping_context_messages() -> None:
    env = message("user", "<environment_context>\n  <cwd>/work/repo</cwd>\n</environment_context>")
    body = codex_body(
        message("developer", "rules"),
        message("user", "# AGENTS.md instructions for /x\n\n…"),
        env,
        message("user", "do it"),
        message("assistant", "Writing."),
        call("call_1"),
        output("call_1"),
        call("call_2"),
        output("call_2"),
    )
    conversation = openai.read_request(body)
    assert (conversation.prompt, conversation.turn, conversation.cwd) == ("do it", 2, "/work/repo")
    retried = codex_body(*body["input"][:-2])
    assert openai.read_request(retried).turn == 1
    invalid = codex_body(*body["input"][:4], call("call_invalid_1"), output("call_invalid_1"))
    assert openai.read_request(invalid).turn == 0


def test_codex_side_requests_a_title_or_no_tools() -> None:
    title = codex_body(message("user", "x"), text={"format": {"type": "json_schema", "name": "title"}})
    assert openai.read_request(title).side == "title"
    assert openai.read_request(codex_body(message("user", "x"), tools=[])).side == "no tools"
    items = openai.output_items(Turn(), openai.read_request(title))
    assert json.loads(items[0]["content"][0]["text"]) == {"title": "corral-model session"}


def test_codex_stream_ends_with_response_completed_and_maps_the_tools() -> None:
    conversation = openai.read_request(codex_body(message("user", "go")))
    events = openai.stream_events(Turn("Running.", ToolCall("run", command="ls -l")), conversation)
    names = [name for name, _ in events]
    assert names[0] == "response.created" and names[-1] == "response.completed"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    done = [d["item"] for n, d in events if n == "response.output_item.done"]
    assert [i["type"] for i in done] == ["message", "function_call"]
    assert json.loads(done[1]["arguments"]) == {"cmd": "ls -l"}
    assert events[-1][1]["response"]["output"] == done
    (patch,) = openai.output_items(
        Turn(tool=ToolCall("write", path="a.txt", content="one\ntwo\n")), conversation
    )
    assert patch["name"] == "apply_patch" and patch["input"] == (
        "*** Begin Patch\n*** Add File: a.txt\n+one\n+two\n*** End Patch\n"
    )
    (read,) = openai.output_items(Turn(tool=ToolCall("read", path="my notes.txt")), conversation)
    assert json.loads(read["arguments"]) == {"cmd": "cat -- 'my notes.txt'"}


def conversation(prompt: str, turn: int) -> Conversation:
    return Conversation(api="anthropic", prompt=prompt, turn=turn, tools=("Bash",))


def test_choose_plays_the_matching_script_by_turn_and_says_done_past_its_end() -> None:
    import re

    script = Script(turns=(Turn("one"), Turn("two")), prompt=re.compile("hello"), name="script 1 (hello)")
    scenario = Scenario(scripts=(script,))
    assert choose(scenario, conversation("hello", 1)).turn == Turn("two")
    assert choose(scenario, conversation("hello", 1)) == choose(scenario, conversation("hello", 1))
    assert choose(scenario, conversation("hello", 2)).turn == Turn(DONE)
    assert "no script" in choose(scenario, conversation("bye", 0)).source


def test_sse_encoding_and_the_cut_point() -> None:
    assert encode("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert "".join(chunks("x" * 50)) == "x" * 50 and chunks("") == [""]
    events = [
        ("message_start", {}),
        ("content_block_start", {}),
        ("content_block_delta", {}),
        ("content_block_delta", {}),
        ("message_stop", {}),
    ]
    assert cut_point(events) == 3
