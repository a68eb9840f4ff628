"""`corral-sim app-server`: codex's app-server protocol on stdio, doing the simulated agent's work.

JSON-RPC 2.0 with the `"jsonrpc"` member left out on the wire, as codex does (a client's `"jsonrpc":"2.0"`
is accepted); one message per line. What the sim serves:

    → {"method":"initialize","id":0,"params":{"clientInfo":{"name":"corral","version":"0.1.0"}}}
    ← {"id":0,"result":{"userAgent":"corral-sim/0.1.0","codexHome":…,"platformFamily":"unix",…}}
    → {"method":"initialized"}
    → {"method":"thread/start","id":1,"params":{"cwd":"/w","approvalPolicy":"on-request","sandbox":…}}
    ← {"id":1,"result":{"thread":{"id":"…"},"model":"corral-sim",…}}   ← thread/started {thread}
    → {"method":"turn/start","id":2,"params":{"threadId":"…","input":[{"type":"text","text":"…"}]}}
    ← {"id":2,"result":{"turn":{"id":"…","status":"inProgress","items":[],"error":null}}}
    ← turn/started, item/started (userMessage, agentMessage, fileChange, commandExecution),
      item/agentMessage/delta, item/commandExecution/outputDelta, item/completed, turn/completed
    ← {"method":"item/fileChange/requestApproval","id":0,"params":{threadId,turnId,itemId,reason}}
    → {"id":0,"result":{"decision":"accept"}}        (acceptForSession, decline, cancel)
    ← serverRequest/resolved {threadId, requestId}

`thread/resume` reopens a thread recorded in the state file (an unknown id is an error); `turn/steer` adds
input to the running turn; `turn/interrupt` ends it with status "interrupted". Requests before `initialize`
get "Not initialized"; an unknown method gets -32601. Edits ask `item/fileChange/requestApproval`, `/run`
asks `item/commandExecution/requestApproval` (git commits and `corral signal emit` are trusted commands),
unless the thread's approvalPolicy is "never". `/error` sends an `error` notification and fails the turn;
`/not-logged-in` does that with codexErrorInfo "Unauthorized", then exits 1. `/offline` (every turn with
`--offline`) is codex with no network: `error` notifications "Reconnecting... 1/5" … "5/5" with willRetry,
then "Reconnecting... waiting for network" every few seconds until the turn is interrupted; `/rate-limit` is
an `error` with codexErrorInfo "UsageLimitExceeded" and a failed turn.
"""

from __future__ import annotations

import itertools
import os
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
from frontends.sim.sdk_turns import (
    API_RETRIES,
    HANG,
    NETWORK_WAIT_S,
    RETRY_S,
    PendingRequests,
    SdkSurface,
    chunks,
    start_turn,
)
from frontends.sim.state import SessionStore

__all__ = ["NOT_LOGGED_IN", "CodexServer", "run"]

NOT_LOGGED_IN = "Not logged in. Run `codex login` to sign in, or set OPENAI_API_KEY."
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
PARSE_ERROR = -32700

_DECISIONS = {
    "accept": Approval.ALLOW,
    "approved": Approval.ALLOW,
    "acceptForSession": Approval.ALLOW_SESSION,
    "approved_for_session": Approval.ALLOW_SESSION,
    "decline": Approval.DENY,
    "denied": Approval.DENY,
    "cancel": Approval.CANCEL,
    "abort": Approval.CANCEL,
}


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class CodexThread(SdkSurface):
    """One codex thread: its settings, its agent, and the `Surface` that turns the agent's actions into
    notifications for the turn that is running."""

    def __init__(self, server: CodexServer, thread_id: str, cwd: str, policy: str, sandbox: Any) -> None:
        super().__init__(server.channel)
        self.server = server
        self.id = thread_id
        self.cwd = cwd
        self.policy = policy
        self.sandbox = sandbox
        self.turn_id = ""
        self.turns = 0
        self.lock = threading.Lock()
        self._allowed: set[str] = set()
        self._items = itertools.count(1)
        self._last_text = ""
        self.agent = Agent(
            Workspace(Path(cwd), task=server.options.task),
            self,
            think_s=server.options.think_s,
            record=server.options.record,
            mode="app-server",
            exit_after_signal=server.options.exit_after_signal,
            role=Role.from_env(os.environ, server.options.task),
        )

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "preview": "",
            "modelProvider": "corral-sim",
            "createdAt": int(time.time()),
            "cwd": self.cwd,
            "status": {"type": "active" if self.turn_id else "idle"},
        }

    def notify(self, method: str, **params: Any) -> None:
        self.channel.send({"method": method, "params": {"threadId": self.id, **params}})

    def _turn(self, status: str, error: Any = None) -> dict[str, Any]:
        return {"id": self.turn_id, "status": status, "items": [], "error": error}

    def _item(self) -> str:
        return f"item_{next(self._items)}"

    # --- Surface ----------------------------------------------------------------------------------------

    def begin(self, prompt: str) -> None:
        self.notify("turn/started", turn=self._turn("inProgress"))
        item = {"type": "userMessage", "id": self._item(), "content": [{"type": "text", "text": prompt}]}
        self.notify("item/started", turnId=self.turn_id, item=item)
        self.notify("item/completed", turnId=self.turn_id, item=item)

    def say(self, text: str) -> None:
        item_id = self._item()
        self.notify(
            "item/started", turnId=self.turn_id, item={"type": "agentMessage", "id": item_id, "text": ""}
        )
        for piece in chunks(text):
            self.notify("item/agentMessage/delta", turnId=self.turn_id, itemId=item_id, delta=piece)
        item = {"type": "agentMessage", "id": item_id, "text": text}
        self.notify("item/completed", turnId=self.turn_id, item=item)
        self._last_text = text

    def _tool_item(self, tool: Tool, status: str, output: str | None = None) -> dict[str, Any]:
        item_id = f"call_{tool.id}"
        if tool.kind == "edit":
            path = str(Path(self.cwd, tool.path))
            kind = {"type": "update", "move_path": None} if tool.name == "Edit" else {"type": "add"}
            diff = "".join(f"+{line}\n" for line in tool.text.splitlines() or [""])
            change = {"path": path, "kind": kind, "diff": diff}
            return {"type": "fileChange", "id": item_id, "changes": [change], "status": status}
        return {
            "type": "commandExecution",
            "id": item_id,
            "command": tool.command,
            "cwd": self.cwd,
            "processId": None,
            "status": status,
            "commandActions": [{"type": "unknown", "command": tool.command}],
            "aggregatedOutput": output,
            "exitCode": None if output is None else (0 if status == "completed" else 1),
            "durationMs": None if output is None else 1,
        }

    def tool_started(self, tool: Tool) -> None:
        self.notify("item/started", turnId=self.turn_id, item=self._tool_item(tool, "inProgress"))

    def approve(self, tool: Tool) -> Approval:
        if self.policy == "never" or tool.kind in self._allowed:
            return Approval.ALLOW
        item_id = f"call_{tool.id}"
        params: dict[str, Any] = {"threadId": self.id, "turnId": self.turn_id, "itemId": item_id}
        if tool.kind == "edit":
            method = "item/fileChange/requestApproval"
            params |= {"reason": f"corral-sim wants to edit {tool.path}", "grantRoot": None}
        else:
            method = "item/commandExecution/requestApproval"
            params |= {
                "reason": f"corral-sim wants to run {tool.command}",
                "command": tool.command,
                "cwd": self.cwd,
                "commandActions": [{"type": "unknown", "command": tool.command}],
            }
        answer = self.server.request(method, params, self.interrupt)
        self.notify("serverRequest/resolved", requestId=answer[0])
        result = answer[1]
        if result is None:
            return Approval.CANCEL
        decision = result.get("decision") if isinstance(result, dict) else None
        approval = _DECISIONS.get(decision, Approval.DENY) if isinstance(decision, str) else Approval.ALLOW
        if approval is Approval.ALLOW_SESSION:
            self._allowed.add(tool.kind)
        return approval

    def tool_finished(self, tool: Tool, status: str, output: str) -> None:
        if tool.kind == "command" and status != "declined":
            self.notify(
                "item/commandExecution/outputDelta",
                turnId=self.turn_id,
                itemId=f"call_{tool.id}",
                delta=output,
            )
        item = self._tool_item(tool, status, output if tool.kind == "command" else None)
        self.notify("item/completed", turnId=self.turn_id, item=item)

    def ask(self, question: str) -> bool | None:
        return None  # the turn ends with the question; the next turn's input is the answer

    def flood(self, megabytes: float) -> None:
        item_id = self._item()
        self.notify(
            "item/started", turnId=self.turn_id, item={"type": "agentMessage", "id": item_id, "text": ""}
        )

        def write(piece: bytes) -> None:
            self.notify("item/agentMessage/delta", turnId=self.turn_id, itemId=item_id, delta=piece.decode())

        faults.flood(write, megabytes)
        item = {"type": "agentMessage", "id": item_id, "text": f"(flooded {megabytes:g} MB)"}
        self.notify("item/completed", turnId=self.turn_id, item=item)

    def fail(self, message: str, *, auth: bool = False) -> None:
        text = NOT_LOGGED_IN if auth else message
        self._error(text, "Unauthorized" if auth else "Other", retrying=False)
        if auth:
            self._complete(Outcome("failed", text, error=text))

    def offline(self) -> Outcome:
        retries = API_RETRIES["codex"]
        for attempt in range(1, retries + 1):
            self._error(f"Reconnecting... {attempt}/{retries}", "Other", retrying=True)
            if not self.sleep(RETRY_S):
                return Outcome("interrupted", "Interrupted by user")
        while True:  # as codex does offline: for ever, until the turn is interrupted
            self._error("Reconnecting... waiting for network", "Other", retrying=True)
            if not self.sleep(NETWORK_WAIT_S):
                return Outcome("interrupted", "Interrupted by user")

    def rate_limited(self) -> Outcome:
        text = "You've hit your usage limit. Try again later."
        self._error(text, "UsageLimitExceeded", retrying=False)
        return Outcome("failed", text, error=text)

    def _error(self, message: str, info: str, *, retrying: bool) -> None:
        error = {"message": message, "codexErrorInfo": info, "additionalDetails": None}
        self.notify("error", turnId=self.turn_id, error=error, willRetry=retrying)

    def end(self, outcome: Outcome) -> None:
        if outcome.status == "completed" and outcome.text:
            self.say(outcome.text)
        self._complete(outcome)

    def _complete(self, outcome: Outcome) -> None:
        error = {"message": outcome.error} if outcome.status == "failed" else None
        turn = self._turn(outcome.status, error)
        with self.lock:  # the thread is free before the client hears it: it may start the next turn at once
            self.turn_id = ""
        self.notify("turn/completed", turn=turn)


class CodexServer:
    """The app-server's main loop: reads requests, answers them, starts turns on worker threads."""

    def __init__(self, options: Options, scenario: Scenario, channel: JsonLines) -> None:
        self.options = options
        self.scenario = scenario
        self.channel = channel
        self.store = SessionStore(options.state_path())
        self.threads: dict[str, CodexThread] = {}
        self.initialized = False
        self.pending = PendingRequests()
        self._request_ids = itertools.count(0)
        self._prompts = 0
        self._workers: list[threading.Thread] = []

    def request(self, method: str, params: dict[str, Any], interrupt: threading.Event) -> tuple[int, Any]:
        """Send a request to the client and wait for its result (None if interrupted or an error)."""
        request_id = next(self._request_ids)
        slot = self.pending.open(request_id)
        self.channel.send({"method": method, "id": request_id, "params": params})
        return request_id, self.pending.wait(request_id, slot, interrupt)

    def serve(self) -> NoReturn:
        while True:
            message = self.channel.get()
            if message is EOF:
                self._shutdown()
            elif isinstance(message, tuple) and message[0] == HANG:
                faults.hang(message[1])
            elif isinstance(message, ParseError):
                self._error(None, PARSE_ERROR, f"Parse error: {message.reason}")
            elif "method" in message:
                self._dispatch(message)
            elif "id" in message:  # the client's answer to one of our requests (an error declines)
                answer = message.get("result") if "error" not in message else {"decision": "decline"}
                self.pending.resolve(message["id"], answer)

    def _shutdown(self) -> NoReturn:
        """stdin closed: stop the running turns and exit 0, as the real server does."""
        for thread in self.threads.values():
            thread.interrupt.set()
        deadline = time.monotonic() + 5.0
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        faults.quit(0)

    def _error(self, request_id: Any, code: int, message: str) -> None:
        self.channel.send({"id": request_id, "error": {"code": code, "message": message}})

    def _dispatch(self, message: dict[str, Any]) -> None:
        method, request_id = message["method"], message.get("id")
        params = message.get("params") or {}
        if request_id is None:  # a notification: `initialized`, or one the sim does not need
            return
        handler = getattr(self, "_rpc_" + method.replace("/", "_"), None)
        try:
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"method not found: {method}")
            if not self.initialized and method != "initialize":
                raise RpcError(INVALID_REQUEST, "Not initialized")
            result = handler(params)
        except RpcError as exc:
            self._error(request_id, exc.code, str(exc))
            return
        self.channel.send({"id": request_id, "result": result[0]})
        if result[1] is not None:
            result[1]()  # what must follow the response (a notification, the turn's thread)

    def _thread(self, params: dict[str, Any]) -> CodexThread:
        thread = self.threads.get(str(params.get("threadId", "")))
        if thread is None:
            raise RpcError(INVALID_REQUEST, f"thread not found: {params.get('threadId')}")
        return thread

    def _settings(self, params: dict[str, Any]) -> dict[str, Any]:
        trusted = self.options.auto_approve or self.options.skip_permissions
        return {
            "model": self.options.model or "corral-sim",
            "modelProvider": "corral-sim",
            "cwd": str(params.get("cwd") or os.getcwd()),
            "approvalPolicy": params.get("approvalPolicy") or ("never" if trusted else "on-request"),
            "sandbox": params.get("sandbox") or {"type": "workspaceWrite"},
            "reasoningEffort": None,
        }

    # --- requests: `_rpc_<method with / as _>(params)` → (result, then-callback or None) -----------------

    def _rpc_initialize(self, params: dict[str, Any]) -> tuple[Any, Any]:
        if self.initialized:
            raise RpcError(INVALID_REQUEST, "Already initialized")
        self.initialized = True
        result = {
            "userAgent": f"corral-sim/{version()}",
            "codexHome": str(self.options.state_path()),
            "platformFamily": "unix",
            "platformOs": sys.platform,
        }
        return result, None

    def _rpc_thread_start(self, params: dict[str, Any]) -> tuple[Any, Any]:
        settings = self._settings(params)
        thread_id = str(uuid.uuid4())
        self.store.create("codex", thread_id, cwd=settings["cwd"], approvalPolicy=settings["approvalPolicy"])
        thread = CodexThread(
            self, thread_id, settings["cwd"], settings["approvalPolicy"], settings["sandbox"]
        )
        self.threads[thread_id] = thread
        return {"thread": thread.info(), **settings}, lambda: self.channel.send(
            {"method": "thread/started", "params": {"thread": thread.info()}}
        )

    def _rpc_thread_resume(self, params: dict[str, Any]) -> tuple[Any, Any]:
        thread_id = str(params.get("threadId", ""))
        record = self.store.get(thread_id)
        if record is None or record.get("kind") != "codex":
            raise RpcError(INVALID_REQUEST, f"no rollout found for thread id {thread_id}")
        thread = self.threads.get(thread_id)
        if thread is None:
            settings = self._settings(
                {"cwd": record.get("cwd"), "approvalPolicy": record.get("approvalPolicy")}
            )
            settings |= {k: v for k, v in self._settings(params).items() if params.get(k)}
            thread = CodexThread(
                self, thread_id, settings["cwd"], settings["approvalPolicy"], settings["sandbox"]
            )
            thread.turns = int(record.get("turns", 0))
            self.threads[thread_id] = thread
        return {
            "thread": thread.info(),
            **self._settings({"cwd": thread.cwd, "approvalPolicy": thread.policy}),
        }, None

    def _rpc_turn_start(self, params: dict[str, Any]) -> tuple[Any, Any]:
        thread = self._thread(params)
        text = _input_text(params.get("input"))
        with thread.lock:
            if thread.turn_id:
                raise RpcError(
                    INVALID_REQUEST, f"a turn is already running on thread {thread.id}: {thread.turn_id}"
                )
            thread.turn_id = f"turn_{uuid.uuid4().hex[:12]}"
        thread.policy = params.get("approvalPolicy") or thread.policy
        thread.interrupt.clear()
        turn = {"id": thread.turn_id, "status": "inProgress", "items": [], "error": None}
        script = _fault_script(self.options) or self.scenario.turn(self._prompts)
        self._prompts += 1
        self.store.record_turn(thread.id, text)

        def go() -> None:
            self._workers.append(
                start_turn(lambda: thread.agent.run_turn(text, script), f"turn-{turn['id']}")
            )

        return {"turn": turn}, go

    def _rpc_turn_steer(self, params: dict[str, Any]) -> tuple[Any, Any]:
        thread = self._thread(params)
        expected = params.get("expectedTurnId")
        with thread.lock:
            if not thread.turn_id:
                raise RpcError(INVALID_REQUEST, "no active turn to steer")
            if expected and expected != thread.turn_id:
                raise RpcError(INVALID_REQUEST, f"expectedTurnId {expected} is not the active turn")
            thread.agent.steer(_input_text(params.get("input")))
            return {"turnId": thread.turn_id}, None

    def _rpc_turn_interrupt(self, params: dict[str, Any]) -> tuple[Any, Any]:
        thread = self._thread(params)
        with thread.lock:
            if not thread.turn_id or params.get("turnId") not in (None, thread.turn_id):
                raise RpcError(INVALID_REQUEST, "no such active turn to interrupt")
        thread.interrupt.set()
        return {}, None


def _fault_script(options: Options) -> str | None:
    """The turn every prompt gets under a launch-time fault (--not-logged-in, --offline); None: no fault."""
    if options.not_logged_in:
        return "/not-logged-in"
    return "/offline" if options.offline else None


def _input_text(items: Any) -> str:
    """The text of a turn's `input` list (text items joined by newlines)."""
    if not isinstance(items, list):
        return ""
    return "\n".join(str(i.get("text", "")) for i in items if isinstance(i, dict) and i.get("type") == "text")


def run(options: Options, scenario: Scenario) -> NoReturn:
    """Serve the app-server protocol on stdin/stdout until stdin closes or a fault ends the process."""
    if options.flood_mb:  # at launch the protocol has no place for it: logs on stderr, as a noisy CLI's
        faults.flood(sys.stderr.buffer.write, options.flood_mb)
        sys.stderr.flush()
    if options.hang:
        faults.hang()
    channel = JsonLines()
    if options.ignore_input:
        channel.ignore()
    channel.start()
    CodexServer(options, scenario, channel).serve()
