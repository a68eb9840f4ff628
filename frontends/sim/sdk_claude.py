"""`corral-sim -p …`: claude's print mode, above all its stream-json protocol, doing the simulated work.

    corral-sim -p --input-format stream-json --output-format stream-json --verbose [--resume SESSION_ID]

    → {"type":"user","message":{"role":"user","content":[{"type":"text","text":"add a note"}]}}
    ← {"type":"system","subtype":"init","session_id":"…","cwd":…,"tools":[…],"model":…,"permissionMode":…}
    ← {"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"I'll …"}],…}}
    ← {"type":"assistant","message":{…"content":[{"type":"tool_use","id":"toolu_…","name":"Write",…}]}}
    ← {"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":…,…}]}}
    ← {"type":"result","subtype":"success","is_error":false,"result":"Done. …","session_id":"…",…}

`system/init` comes with the first user message, as claude sends it. User messages sent while a turn runs
wait for it (one turn at a time, in order). Permissions as claude decides them: `--dangerously-skip-
permissions` or `--permission-mode bypassPermissions` allow everything, `acceptEdits` allows edits; with
`--permission-prompt-tool stdio` the sim asks the client with a `control_request` (`can_use_tool`) and waits
for its `control_response` (`{"behavior":"allow"}` or `"deny"`); otherwise the tool use is denied and listed
in the result's `permission_denials`. Client control requests: `initialize`, `interrupt` (the turn ends with
subtype "error_during_execution"), `set_permission_mode`; others get an error response.
`--include-partial-messages` adds `stream_event` deltas; `--replay-user-messages` echoes user messages.
`--resume ID` continues a session recorded in the state file (unknown: "No conversation found with session
ID: …", exit 1). Without `--input-format stream-json` the prompt comes from argv or stdin and the output is
text, one json result, or the stream. `/not-logged-in`: "Not logged in · Please run /login", exit 1.
`/offline` (every turn with `--offline`): `system/api_retry` messages 1/10 … 10/10 (no HTTP status), then an
assistant message with `error` and the result "API Error: Connection error.", as claude with no network;
`/rate-limit`: a `rate_limit_event` with status "rejected", then the usage-limit text as the error result.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

from frontends.sim import faults
from frontends.sim.behaviour.agent import Agent, Approval, Outcome, Tool
from frontends.sim.behaviour.roles import Role
from frontends.sim.behaviour.workspace import Workspace
from frontends.sim.jsonlines import EOF, JsonLines, ParseError
from frontends.sim.options import Options, version
from frontends.sim.scenario import Scenario
from frontends.sim.screen import CONNECTION_ERROR, NOT_LOGGED_IN, rate_limit_text
from frontends.sim.sdk_turns import API_RETRIES, HANG, RETRY_S, PendingRequests, SdkSurface, chunks
from frontends.sim.state import SessionStore

__all__ = ["ClaudeSession", "run"]

TOOLS = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "TodoWrite"]
_REJECTED = "The user doesn't want to proceed with this tool use. The tool use was rejected."


def _uuid() -> str:
    return str(uuid.uuid4())


class ClaudeSession(SdkSurface):
    """One claude session: the `Surface` that turns the agent's actions into stream-json messages."""

    def __init__(self, options: Options, channel: JsonLines, session_id: str, cwd: Path) -> None:
        super().__init__(channel)
        self.options = options
        self.session_id = session_id
        self.cwd = cwd
        self.permission_mode = options.permission_mode
        self.stream = options.output_format == "stream-json"
        self.pending = PendingRequests()
        self.result: dict[str, Any] = {}
        self._init_sent = False
        self._allowed: set[str] = set()
        self._requests = itertools.count(1)
        self._denials: list[dict[str, Any]] = []
        self._tool_uses = 0
        self._output_tokens = 0
        self._started = 0.0
        self._last_text = ""
        self.agent = Agent(
            Workspace(cwd, task=options.task),
            self,
            think_s=options.think_s,
            record=options.record,
            mode="stream-json" if options.input_format == "stream-json" else "print",
            exit_after_signal=options.exit_after_signal,
            role=Role.from_env(os.environ, options.task),
        )

    def emit(self, message: dict[str, Any]) -> None:
        if self.stream:
            self.channel.send(message)

    def _assistant(self, content: list[dict[str, Any]], **extra: Any) -> None:
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": self.options.model or "corral-sim",
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 1},
        }
        self.emit(
            {
                "type": "assistant",
                "message": message,
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": _uuid(),
                **extra,
            }
        )

    def _partial(self, event: dict[str, Any]) -> None:
        if self.options.include_partial_messages:
            self.emit(
                {
                    "type": "stream_event",
                    "event": event,
                    "parent_tool_use_id": None,
                    "session_id": self.session_id,
                    "uuid": _uuid(),
                }
            )

    # --- Surface ----------------------------------------------------------------------------------------

    def begin(self, prompt: str) -> None:
        self._denials, self._tool_uses, self._started = [], 0, time.monotonic()
        if not self._init_sent:
            self._init_sent = True
            self.emit(
                {
                    "type": "system",
                    "subtype": "init",
                    "cwd": str(self.cwd),
                    "session_id": self.session_id,
                    "tools": TOOLS,
                    "mcp_servers": [],
                    "model": self.options.model or "corral-sim",
                    "permissionMode": self.permission_mode,
                    "slash_commands": [],
                    "apiKeySource": "none",
                    "claude_code_version": version(),
                    "output_style": "default",
                    "agents": [],
                    "skills": [],
                    "plugins": [],
                    "uuid": _uuid(),
                }
            )
        if self.options.replay_user_messages:
            self.emit(
                {
                    "type": "user",
                    "message": {"role": "user", "content": [{"type": "text", "text": prompt}]},
                    "parent_tool_use_id": None,
                    "session_id": self.session_id,
                    "uuid": _uuid(),
                }
            )

    def say(self, text: str) -> None:
        if self.options.include_partial_messages:
            self._partial({"type": "message_start", "message": {"role": "assistant", "content": []}})
            self._partial(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for piece in chunks(text):
                self._partial(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    }
                )
            self._partial({"type": "content_block_stop", "index": 0})
            self._partial({"type": "message_stop"})
        self._assistant([{"type": "text", "text": text}])
        self._last_text = text
        self._output_tokens += len(text.split())

    @staticmethod
    def _tool_use_id(tool: Tool) -> str:
        return f"toolu_{tool.id:024d}"

    def _tool_input(self, tool: Tool) -> dict[str, Any]:
        if tool.kind == "edit":
            path = str(self.cwd / tool.path)
            if tool.name == "Write":
                return {"file_path": path, "content": tool.text + "\n"}
            return {"file_path": path, "old_string": "", "new_string": tool.text + "\n"}
        return {"command": tool.command, "description": f"Run {tool.command.split(' ')[0]}"}

    def tool_started(self, tool: Tool) -> None:
        self._tool_uses += 1
        block = {
            "type": "tool_use",
            "id": self._tool_use_id(tool),
            "name": tool.name,
            "input": self._tool_input(tool),
        }
        self._assistant([block])

    def approve(self, tool: Tool) -> Approval:
        mode = self.permission_mode
        if self.options.skip_permissions or self.options.auto_approve or mode == "bypassPermissions":
            return Approval.ALLOW
        if tool.kind in self._allowed or (tool.kind == "edit" and mode == "acceptEdits"):
            return Approval.ALLOW
        if self.options.permission_prompt_tool != "stdio" or not self.stream:
            self._denials.append(
                {
                    "tool_name": tool.name,
                    "tool_use_id": self._tool_use_id(tool),
                    "tool_input": self._tool_input(tool),
                }
            )
            return Approval.DENY
        request_id = f"req_{next(self._requests)}_{uuid.uuid4().hex[:8]}"
        suggestion = (
            {"type": "setMode", "mode": "acceptEdits", "destination": "session"}
            if tool.kind == "edit"
            else {
                "type": "addRules",
                "rules": [{"toolName": "Bash", "ruleContent": tool.command}],
                "behavior": "allow",
                "destination": "session",
            }
        )
        slot = self.pending.open(request_id)
        self.emit(
            {
                "type": "control_request",
                "request_id": request_id,
                "request": {
                    "subtype": "can_use_tool",
                    "tool_name": tool.name,
                    "input": self._tool_input(tool),
                    "tool_use_id": self._tool_use_id(tool),
                    "permission_suggestions": [suggestion],
                },
            }
        )
        answer = self.pending.wait(request_id, slot, self.interrupt)
        if answer is None:
            return Approval.CANCEL
        if answer.get("behavior") == "allow":
            if answer.get("updatedPermissions"):
                self._allowed.add(tool.kind)
                return Approval.ALLOW_SESSION
            return Approval.ALLOW
        return Approval.CANCEL if answer.get("interrupt") else Approval.DENY

    def tool_finished(self, tool: Tool, status: str, output: str) -> None:
        if (
            status == "declined"
            and self._denials
            and self._denials[-1]["tool_use_id"] == self._tool_use_id(tool)
        ):
            target = f"write to {self.cwd / tool.path}" if tool.kind == "edit" else f"use {tool.name}"
            output = f"Claude requested permissions to {target}, but you haven't granted it yet."
        elif status == "declined":
            output = _REJECTED
        block = {
            "type": "tool_result",
            "tool_use_id": self._tool_use_id(tool),
            "content": output,
            "is_error": status != "completed",
        }
        self.emit(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": _uuid(),
            }
        )

    def ask(self, question: str) -> bool | None:
        return None  # the result is the question; the next user message answers it

    def flood(self, megabytes: float) -> None:
        faults.flood(lambda piece: self._assistant([{"type": "text", "text": piece.decode()}]), megabytes)

    def fail(self, message: str, *, auth: bool = False) -> None:
        text = NOT_LOGGED_IN if auth else f"API Error: {message}"
        self._assistant(
            [{"type": "text", "text": text}], **({"error": "authentication_failed"} if auth else {})
        )
        if auth:
            self._result(Outcome("failed", text, error=text))

    def offline(self) -> Outcome:
        retries = API_RETRIES["claude"]
        for attempt in range(1, retries + 1):
            retry = {"attempt": attempt, "max_retries": retries, "retry_delay_ms": int(RETRY_S * 1000)}
            self.emit(
                {"type": "system", "subtype": "api_retry", **retry, "error_status": None, "error": "unknown"}
                | {"session_id": self.session_id, "uuid": _uuid()}
            )
            if not self.sleep(RETRY_S):
                return Outcome("interrupted", "Interrupted by user")
        self._assistant([{"type": "text", "text": CONNECTION_ERROR}], error="unknown")
        return Outcome("failed", CONNECTION_ERROR, error=CONNECTION_ERROR)

    def rate_limited(self) -> Outcome:
        resets = int(time.time()) + 3600
        info = {
            "status": "rejected",
            "rateLimitType": "five_hour",
            "resetsAt": resets,
            "isUsingOverage": False,
        }
        self.emit({"type": "rate_limit_event", "rate_limit_info": info, "session_id": self.session_id})
        text = rate_limit_text(resets)
        self._assistant([{"type": "text", "text": text}], error="rate_limit")
        return Outcome("failed", text, error=text)

    def end(self, outcome: Outcome) -> None:
        if outcome.status == "completed" and outcome.text:
            self.say(outcome.text)
        self._result(outcome)

    def _result(self, outcome: Outcome) -> None:
        elapsed = int((time.monotonic() - self._started) * 1000)
        self.result = {
            "type": "result",
            "subtype": "error_during_execution" if outcome.status == "interrupted" else "success",
            "is_error": outcome.status != "completed",
            "duration_ms": elapsed,
            "duration_api_ms": elapsed,
            "num_turns": self._tool_uses + 1,
            "result": outcome.text,
            "session_id": self.session_id,
            "total_cost_usd": 0.0,
            "usage": {
                "input_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": self._output_tokens,
            },
            "permission_denials": self._denials,
            "uuid": _uuid(),
        }
        if self.stream:
            self.channel.send(self.result)
        elif self.options.output_format == "json":
            self.channel.write_raw((json.dumps(self.result) + "\n").encode())
        else:
            self.channel.write_raw((outcome.text + "\n").encode())


def _user_text(message: dict[str, Any]) -> str | None:
    """The text of a `{"type":"user"}` message (None when it carries only tool results)."""
    content = (message.get("message") or {}).get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(texts) if texts else None


def _fault_script(options: Options) -> str | None:
    """The turn every prompt gets under a launch-time fault (--not-logged-in, --offline); None: no fault."""
    if options.not_logged_in:
        return "/not-logged-in"
    return "/offline" if options.offline else None


def _die(message: str) -> NoReturn:
    sys.stderr.write(message + "\n")
    faults.quit(1)


def _session_id(options: Options, store: SessionStore, cwd: Path) -> str:
    if options.resume:
        if store.get(options.resume) is None:
            _die(f"No conversation found with session ID: {options.resume}")
        return options.resume
    if options.continue_last and (latest := store.latest("claude")):
        return latest
    return store.create("claude", options.session_id, cwd=str(cwd))


class _Loop:
    """The stream-json main loop: reads user messages and control messages; turns run in order on one
    worker thread."""

    def __init__(self, session: ClaudeSession, scenario: Scenario, store: SessionStore) -> None:
        self.session = session
        self.scenario = scenario
        self.store = store
        self.turns: queue.Queue[str | None] = queue.Queue()
        self.worker = threading.Thread(target=self._work, name="corral-sim-turns", daemon=True)

    def _work(self) -> None:
        prompts = 0
        while (text := self.turns.get()) is not None:
            script = _fault_script(self.session.options) or self.scenario.turn(prompts)
            prompts += 1
            self.session.interrupt.clear()
            self.session.agent.run_turn(text, script)
            self.store.record_turn(self.session.session_id, text)

    def control(self, message: dict[str, Any]) -> None:
        request_id = message.get("request_id")
        request = message.get("request") or {}
        subtype = request.get("subtype")
        response: dict[str, Any] = {}
        if subtype == "interrupt":
            self.session.interrupt.set()
        elif subtype == "initialize":
            response = {"commands": [], "output_style": "default", "available_output_styles": ["default"]}
        elif subtype == "set_permission_mode":
            self.session.permission_mode = str(request.get("mode", "default"))
        else:
            self.session.channel.send(
                {
                    "type": "control_response",
                    "response": {
                        "subtype": "error",
                        "request_id": request_id,
                        "error": f"Unsupported control request subtype: {subtype}",
                    },
                }
            )
            return
        self.session.channel.send(
            {
                "type": "control_response",
                "response": {"subtype": "success", "request_id": request_id, "response": response},
            }
        )

    def serve(self) -> NoReturn:
        self.worker.start()
        channel = self.session.channel
        while True:
            message = channel.get()
            if message is EOF:
                self.turns.put(None)  # finish the turns already asked for, then exit
                while self.worker.is_alive():
                    self.worker.join(0.2)  # in slices, so that SIGTERM is handled meanwhile
                faults.quit(0)
            if isinstance(message, tuple) and message[0] == HANG:
                faults.hang(message[1])
            if isinstance(message, ParseError):
                _die(f"Error parsing streaming input line: {message.line[:200]}: {message.reason}")
            kind = message.get("type")
            if kind == "user":
                text = _user_text(message)
                if text is not None:
                    self.turns.put(text)
            elif kind == "control_request":
                self.control(message)
            elif kind == "control_response":
                response = message.get("response") or {}
                answer = (
                    response.get("response") if response.get("subtype") == "success" else {"behavior": "deny"}
                )
                self.session.pending.resolve(response.get("request_id"), answer or {})


def run(options: Options, scenario: Scenario) -> NoReturn:
    """Claude's print mode: stream-json in and out, or one prompt from argv/stdin."""
    if options.output_format == "stream-json" and not options.verbose:
        _die("Error: When using --print, --output-format=stream-json requires --verbose")
    if options.input_format == "stream-json" and options.output_format != "stream-json":
        _die("Error: --input-format=stream-json requires output-format=stream-json.")
    cwd = Path(os.getcwd())
    store = SessionStore(options.state_path(cwd))
    session_id = _session_id(options, store, cwd)
    if options.flood_mb:  # at launch the protocol has no place for it: logs on stderr
        faults.flood(sys.stderr.buffer.write, options.flood_mb)
        sys.stderr.flush()
    if options.hang:
        faults.hang()
    channel = JsonLines()
    session = ClaudeSession(options, channel, session_id, cwd)
    if options.input_format == "stream-json":
        if options.ignore_input:
            channel.ignore()
        channel.start()
        _Loop(session, scenario, store).serve()
    prompt = options.prompt or ("" if sys.stdin.isatty() else sys.stdin.read())
    if not prompt.strip():
        _die("Error: Input must be provided either through stdin or as a prompt argument when using --print")
    script = _fault_script(options) or scenario.turn(0)
    store.record_turn(session_id, prompt)
    session.agent.run_turn(prompt, script)
    faults.quit(1 if session.result.get("is_error") else 0)
