"""The two structured agent transports, as pure encode/decode functions: no process, no thread.

codex `app-server` — JSON-RPC 2.0, one JSON object per line, without the `"jsonrpc"` member on the wire:

    → initialize {clientInfo}            ← result          → initialized (notification)
    → thread/start {cwd, approvalPolicy, sandbox, serviceTier?}   ← result {thread: {id}}
      (or thread/resume {threadId} to continue a stored conversation)
    → turn/start {threadId, input: [{type: "text", text}]}        ← result {turn: {id}}
    ← turn/started, item/started, item/agentMessage/delta, item/completed, turn/completed, error
    ← item/commandExecution/requestApproval, item/fileChange/requestApproval,
      item/permissions/requestApproval (server requests: answered by the permission policy)
    → turn/steer while a turn runs; turn/interrupt to stop it

claude `-p --input-format stream-json --output-format stream-json --verbose`:

    → {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": …}]}}
    ← {"type": "system", "subtype": "init", "session_id": …}, {"type": "assistant", …},
      {"type": "user", …tool results…}, {"type": "result", "is_error": …, "result": …, "session_id": …}

Both are decoded into the same `SdkEvent`s, which is all an SdkRuntime and the status logic look at.
Anything else on the wire is logged and ignored.

Trouble during a turn is an `SdkError` that says what it means (`cause`, from `trouble_cause`) and whether the
agent retries by itself: codex's `error` notifications ("Reconnecting... 2/5", "Reconnecting... waiting for
network", with `willRetry`), claude's `system/api_retry` messages, its `rate_limit_event` when a limit is
reached and an assistant message that carries an `error`. Offline, codex retries a turn's request five times
and then waits for the network for ever (`stalled`: the turn cannot go on by itself); claude retries and then
ends the turn with an error result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

__all__ = [
    "FAILING",
    "NOT_LOGGED_IN",
    "RATE_LIMITED",
    "SOME_ERROR",
    "UNREACHABLE",
    "AgentText",
    "Approval",
    "CodexClient",
    "Connected",
    "ResumeFailed",
    "SdkError",
    "SdkEvent",
    "SessionStarted",
    "TurnCompleted",
    "TurnStarted",
    "Unhandled",
    "claude_argv_flags",
    "claude_control_response",
    "claude_interrupt",
    "claude_user_message",
    "decode_claude",
    "trouble_cause",
]

METHOD_NOT_FOUND = -32601
APPROVAL_METHODS = {
    "item/commandExecution/requestApproval": "command",
    "item/fileChange/requestApproval": "file change",
    "item/permissions/requestApproval": "permissions",
}


class Connected(msgspec.Struct, frozen=True):
    """codex answered `initialize`: send `initialized`, then start or resume the thread."""


class ResumeFailed(msgspec.Struct, frozen=True):
    """The stored conversation could not be resumed (`message` says why): start a new one."""

    message: str


class SessionStarted(msgspec.Struct, frozen=True):
    """The conversation's id (codex thread id, claude session id): stored, so a restart resumes it."""

    session_id: str


class TurnStarted(msgspec.Struct, frozen=True):
    turn_id: str = ""


class TurnCompleted(msgspec.Struct, frozen=True):
    turn_id: str = ""
    status: str = "completed"  # completed | interrupted | failed
    error: str = ""
    text: str = ""  # claude: the result text


class AgentText(msgspec.Struct, frozen=True):
    """Text the agent wrote (a delta, or a whole message)."""

    text: str


class Approval(msgspec.Struct, frozen=True):
    """The agent asks for permission; `request_id` is what the answer must carry."""

    request_id: Any
    kind: str  # command | file change | permissions
    summary: str
    requested: Any = None  # permissions: what was asked for (granting means echoing it back)


class SdkError(msgspec.Struct, frozen=True):
    """The agent's own error message (not logged in, no network, …): it becomes the instance's error.

    `fatal`: the agent gives up on what it was doing (before the session is up, the runtime ends); `retrying`:
    it tries again by itself; `cause`: what the error means for a person ("the model API is unreachable"),
    "" for a line that is only the agent talking on the wrong stream; `stalled`: the agent says it cannot go
    on until something outside it changes ("waiting for network")."""

    message: str
    fatal: bool = False
    retrying: bool = False
    cause: str = ""
    stalled: bool = False


class Unhandled(msgspec.Struct, frozen=True):
    """A message corral does not act on (logged); `reply` is what to send back, if it was a request."""

    summary: str
    reply: bytes | None = None


SdkEvent = (
    Connected
    | ResumeFailed
    | SessionStarted
    | TurnStarted
    | TurnCompleted
    | AgentText
    | Approval
    | SdkError
    | Unhandled
)

_enc = msgspec.json.Encoder()


def _line(obj: dict[str, Any]) -> bytes:
    return _enc.encode(obj) + b"\n"


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


UNREACHABLE = "the model API is unreachable"
RATE_LIMITED = "rate limited"
NOT_LOGGED_IN = "not logged in"
FAILING = "the model API is failing"
SOME_ERROR = "the agent reports an error"

# What an error's category means: codex's `codexErrorInfo` (a name, or an object keyed by the name) and
# claude's error categories (`api_retry.error`, an assistant message's `error`), lower-cased without `_`.
_CAUSES: Mapping[str, str] = MappingProxyType(
    {
        "httpconnectionfailed": UNREACHABLE,
        "responsestreamconnectionfailed": UNREACHABLE,
        "responsestreamdisconnected": UNREACHABLE,
        "unauthorized": NOT_LOGGED_IN,
        "authenticationfailed": NOT_LOGGED_IN,
        "usagelimitexceeded": RATE_LIMITED,
        "ratelimit": RATE_LIMITED,
        "ratelimited": RATE_LIMITED,
        "internalservererror": FAILING,
        "servererror": FAILING,
        "serveroverloaded": FAILING,
        "overloaded": FAILING,
        "contextwindowexceeded": "the context window is full",
        "badrequest": "the model API refused the request",
        "invalidrequest": "the model API refused the request",
        "billingerror": "a billing problem at the model API",
    }
)
# When the category says nothing ("Other", "unknown", none), the message may.
_MESSAGE_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"reconnecting|connection (?:error|refused|reset)|stream disconnected|ENOTFOUND|ECONNREFUSED"
            r"|ETIMEDOUT|network|unable to connect|failed to connect",
            re.IGNORECASE,
        ),
        UNREACHABLE,
    ),
    (re.compile(r"rate.?limit|usage limit|\b429\b", re.IGNORECASE), RATE_LIMITED),
    (re.compile(r"not logged in|invalid api key|\b401\b|unauthori[sz]ed", re.IGNORECASE), NOT_LOGGED_IN),
    (re.compile(r"overloaded|\b5\d\d\b|internal server error", re.IGNORECASE), FAILING),
)
_STALLED = re.compile(r"waiting for network|retry limit|retries exhausted", re.IGNORECASE)


def trouble_cause(category: Any, message: str = "") -> str:
    """What an agent's error means for a person: "the model API is unreachable", "rate limited", …

    `category` is codex's `codexErrorInfo` ("HttpConnectionFailed", or {"responseStreamDisconnected": …}) or
    claude's error category ("rate_limit", "server_error"); when it says nothing, the message is read.
    """
    if isinstance(category, dict) and category:
        category = next(iter(category))
    key = category.lower().replace("_", "") if isinstance(category, str) else ""
    if key in _CAUSES:
        return _CAUSES[key]
    for pattern, cause in _MESSAGE_CAUSES:
        if pattern.search(message):
            return cause
    return SOME_ERROR


class CodexClient:
    """The client side of one codex app-server connection: builds requests, decodes what comes back.

    Not thread-safe: owned by one runtime actor. `pending` maps request ids to the method they were for,
    so a response can be understood (the thread id comes back in thread/start's result).
    """

    def __init__(self, client_name: str = "corral", version: str = "0.1.0") -> None:
        self._next_id = 0
        self.pending: dict[int, str] = {}
        self.thread_id = ""
        self.turn_id = ""
        self._client = {"name": client_name, "title": "corral", "version": version}

    def _request(self, method: str, params: dict[str, Any]) -> bytes:
        self._next_id += 1
        self.pending[self._next_id] = method
        return _line({"method": method, "id": self._next_id, "params": params})

    def initialize(self) -> bytes:
        return self._request("initialize", {"clientInfo": self._client})

    def initialized(self) -> bytes:
        return _line({"method": "initialized"})

    def thread_start(
        self,
        cwd: str,
        approval_policy: str = "on-request",
        sandbox: str = "workspace-write",
        fast: bool = False,
    ) -> bytes:
        params: dict[str, Any] = {"cwd": cwd, "approvalPolicy": approval_policy, "sandbox": sandbox}
        if fast:
            params["serviceTier"] = "fast"
        return self._request("thread/start", params)

    def thread_resume(self, thread_id: str) -> bytes:
        self.thread_id = thread_id
        return self._request("thread/resume", {"threadId": thread_id})

    def send_text(self, text: str) -> bytes:
        """turn/start, or turn/steer while a turn is running (the input joins the active turn)."""
        items = [{"type": "text", "text": text}]
        if self.turn_id:
            return self._request(
                "turn/steer", {"threadId": self.thread_id, "turnId": self.turn_id, "input": items}
            )
        return self._request("turn/start", {"threadId": self.thread_id, "input": items})

    def interrupt(self) -> bytes:
        return self._request("turn/interrupt", {"threadId": self.thread_id, "turnId": self.turn_id})

    def answer_approval(self, approval: Approval, allow: bool) -> bytes:
        if approval.kind == "permissions":
            # There is no "decline" for permissions: refusing is granting nothing.
            granted = approval.requested if allow and isinstance(approval.requested, dict) else {}
            return _line({"id": approval.request_id, "result": {"permissions": granted, "scope": "turn"}})
        return _line({"id": approval.request_id, "result": {"decision": "accept" if allow else "decline"}})

    def decode(self, line: bytes) -> list[SdkEvent]:
        """What one line from the server means. Never raises: garbage is an Unhandled event."""
        try:
            msg = msgspec.json.decode(line)
        except msgspec.DecodeError:
            return [Unhandled(f"not JSON: {line[:120]!r}")]
        if not isinstance(msg, dict):
            return [Unhandled(f"not an object: {line[:120]!r}")]
        method, params = msg.get("method"), msg.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        if method is not None and "id" in msg:
            return [self._server_request(msg["id"], str(method), params)]
        if method is not None:
            return self._notification(str(method), params)
        if "id" in msg:
            return self._response(msg)
        return [Unhandled(f"unrecognised message: {line[:120]!r}")]

    def _server_request(self, request_id: Any, method: str, params: dict[str, Any]) -> SdkEvent:
        kind = APPROVAL_METHODS.get(method)
        if kind is None:
            reply = _line(
                {"id": request_id, "error": {"code": METHOD_NOT_FOUND, "message": f"{method} not supported"}}
            )
            return Unhandled(f"server request {method} refused with -32601", reply)
        permissions = params.get("permissions")
        summary = (
            _text_of(params.get("command"))
            or _text_of(params.get("reason"))
            or (", ".join(sorted(str(k) for k in permissions)) if isinstance(permissions, dict) else "")
            or method
        )
        return Approval(request_id, kind, summary, permissions)

    def _notification(self, method: str, params: dict[str, Any]) -> list[SdkEvent]:
        turn = params.get("turn") if isinstance(params.get("turn"), dict) else {}
        if method == "turn/started":
            self.turn_id = _text_of(turn.get("id")) or _text_of(params.get("turnId"))
            return [TurnStarted(self.turn_id)]
        if method == "turn/completed":
            turn_id = _text_of(turn.get("id")) or self.turn_id
            self.turn_id = ""
            error = turn.get("error")
            message = _text_of(error.get("message")) if isinstance(error, dict) else _text_of(error)
            return [TurnCompleted(turn_id, _text_of(turn.get("status")) or "completed", message)]
        if method == "item/agentMessage/delta":
            return [AgentText(_text_of(params.get("delta")))]
        if method == "thread/started":
            thread = params.get("thread") if isinstance(params.get("thread"), dict) else {}
            if thread_id := _text_of(thread.get("id")):
                self.thread_id = thread_id
                return [SessionStarted(thread_id)]
            return []
        if method == "error":
            error = params.get("error") if isinstance(params.get("error"), dict) else params
            message = _text_of(error.get("message")) or "the agent reported an error"
            retrying = params.get("willRetry") is True
            return [
                SdkError(
                    message,
                    fatal=not retrying,
                    retrying=retrying,
                    cause=trouble_cause(error.get("codexErrorInfo"), message),
                    stalled=bool(_STALLED.search(message)),
                )
            ]
        if method in ("item/started", "item/completed"):
            item = params.get("item") if isinstance(params.get("item"), dict) else {}
            return [Unhandled(f"{method} {item.get('type', '?')}")]
        return [Unhandled(method)]

    def _response(self, msg: dict[str, Any]) -> list[SdkEvent]:
        method = self.pending.pop(msg["id"], "") if isinstance(msg["id"], int) else ""
        error = msg.get("error")
        if isinstance(error, dict) and method == "thread/resume":
            return [ResumeFailed(_text_of(error.get("message")) or str(error))]
        if isinstance(error, dict) and method == "turn/start":
            # No turn runs: the input was refused, which ends the turn corral started as failed.
            self.turn_id = ""
            message = _text_of(error.get("message")) or str(error)
            return [TurnCompleted(status="failed", error=f"turn/start failed: {message}")]
        if isinstance(error, dict):
            return [
                SdkError(
                    f"{method or 'request'} failed: {_text_of(error.get('message')) or error}",
                    fatal=method in ("initialize", "thread/start", "thread/resume"),
                )
            ]
        result = msg.get("result") if isinstance(msg.get("result"), dict) else {}
        if method == "initialize":
            return [Connected()]
        if method in ("thread/start", "thread/resume"):
            thread = result.get("thread") if isinstance(result.get("thread"), dict) else {}
            thread_id = _text_of(thread.get("id")) or self.thread_id
            if thread_id:
                self.thread_id = thread_id
                return [SessionStarted(thread_id)]
        if method == "turn/start":
            turn = result.get("turn") if isinstance(result.get("turn"), dict) else {}
            self.turn_id = _text_of(turn.get("id")) or self.turn_id
        return []


# -- claude stream-json ---------------------------------------------------------------------------------


def claude_argv_flags(session_id: str = "") -> list[str]:
    """The flags that make `claude` (or the sim) speak stream-json, with permission requests sent to corral
    as `control_request`s (`--permission-prompt-tool stdio`); `--resume` continues a session."""
    flags = [
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-prompt-tool",
        "stdio",
    ]
    return [*flags, "--resume", session_id] if session_id else flags


def claude_user_message(text: str) -> bytes:
    return _line({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": text}]}})


_CLAUDE_COMMAND_TOOLS = {"Bash", "BashOutput", "KillShell"}


def claude_control_response(approval: Approval, allow: bool) -> bytes:
    """The answer to a `can_use_tool` control request."""
    if allow:
        answer: dict[str, Any] = {"behavior": "allow", "updatedInput": approval.requested or {}}
    else:
        answer = {"behavior": "deny", "message": "denied by corral's permission policy"}
    return _line(
        {
            "type": "control_response",
            "response": {"subtype": "success", "request_id": approval.request_id, "response": answer},
        }
    )


def claude_interrupt(request_id: str) -> bytes:
    """Stop the running turn (claude answers, and the turn ends with an `error_during_execution` result)."""
    return _line({"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}})


def _claude_retry(msg: dict[str, Any]) -> SdkEvent:
    """`system/api_retry`: claude failed a request to its model API and tries again by itself."""
    attempt, most = msg.get("attempt"), msg.get("max_retries")
    status, category = msg.get("error_status"), _text_of(msg.get("error"))
    text = f"API retry {attempt}/{most}" if attempt is not None and most is not None else "API retry"
    if isinstance(status, int):
        text += f" after HTTP {status}"
    if category and category != "unknown":
        text += f" ({category})"
    if category in ("", "unknown") and not isinstance(status, int):
        cause = UNREACHABLE  # no HTTP answer at all: the request never got through
    else:
        cause = trouble_cause(category, f"{category} {status or ''}")
    return SdkError(text, retrying=True, cause=cause)


def _claude_rate_limit(msg: dict[str, Any]) -> SdkEvent:
    """`rate_limit_event`: only a rejection matters (a warning near the limit is no trouble yet)."""
    info = msg.get("rate_limit_info") if isinstance(msg.get("rate_limit_info"), dict) else {}
    if info.get("status") != "rejected":
        return Unhandled(f"rate_limit_event {info.get('status')}")
    kind = _text_of(info.get("rateLimitType")).replace("_", " ")
    text = f"usage limit reached ({kind})" if kind else "usage limit reached"
    resets = info.get("resetsAt")
    if isinstance(resets, int | float) and 0 < resets < 2**33:
        text += time.strftime(", resets at %H:%M UTC", time.gmtime(resets))
    return SdkError(text, cause=RATE_LIMITED)


def _claude_control_request(msg: dict[str, Any]) -> SdkEvent:
    request_id = msg.get("request_id")
    request = msg.get("request") if isinstance(msg.get("request"), dict) else {}
    subtype = _text_of(request.get("subtype"))
    if subtype == "can_use_tool":
        tool = _text_of(request.get("tool_name")) or "tool"
        tool_input = request.get("input") if isinstance(request.get("input"), dict) else {}
        detail = _text_of(tool_input.get("command")) or _text_of(tool_input.get("file_path"))
        kind = "command" if tool in _CLAUDE_COMMAND_TOOLS else "file change"
        return Approval(request_id, kind, f"{tool}({detail})" if detail else tool, tool_input)
    reply = _line(
        {
            "type": "control_response",
            "response": {"subtype": "error", "request_id": request_id, "error": f"unsupported: {subtype}"},
        }
    )
    return Unhandled(f"control_request {subtype} refused", reply)


def decode_claude(line: bytes) -> list[SdkEvent]:
    """What one stream-json line from claude means. Never raises."""
    try:
        msg = msgspec.json.decode(line)
    except msgspec.DecodeError:
        text = line.decode(errors="replace").strip()
        return [SdkError(text, fatal=False)] if text else []
    if not isinstance(msg, dict):
        return [Unhandled(f"not an object: {line[:120]!r}")]
    kind = msg.get("type")
    if kind == "system":
        if msg.get("subtype") == "init" and (session := _text_of(msg.get("session_id"))):
            return [SessionStarted(session)]
        if msg.get("subtype") == "api_retry":
            return [_claude_retry(msg)]
        return [Unhandled(f"system {msg.get('subtype')}")]
    if kind == "rate_limit_event":
        return [_claude_rate_limit(msg)]
    if kind == "assistant":
        message = msg.get("message") if isinstance(msg.get("message"), dict) else {}
        content = message.get("content") if isinstance(message.get("content"), list) else []
        text = "".join(
            _text_of(c.get("text")) for c in content if isinstance(c, dict) and c.get("type") == "text"
        )
        events: list[SdkEvent] = [AgentText(text)] if text else []
        if category := _text_of(msg.get("error")):  # the API failed and claude says so in the transcript
            events.append(SdkError(text or category, cause=trouble_cause(category, text)))
        return events
    if kind == "control_request":
        return [_claude_control_request(msg)]
    if kind == "result":
        text = _text_of(msg.get("result"))
        if msg.get("is_error"):
            return [TurnCompleted(status="failed", error=text or _text_of(msg.get("subtype")), text=text)]
        return [TurnCompleted(status="completed", text=text)]
    return [Unhandled(str(kind))]
