"""Carrying out what a key asked for, off the loop's thread: control API calls, keys typed to an agent,
desktop notifications. Each outcome comes back to the loop as a toast.

    runner = EffectRunner(client, outcomes)        # outcomes: queue.Queue[Outcome]
    runner.call(Call(method="POST", path="/v1/repos/r/instances/a/pause", done="paused a"))
    runner.send_keys(SendKeys("a", ("x", "Enter")), base="/v1/repos/r")
    ...
    runner.close()

**Why threads.** A pause commits the agent's work and can take seconds; the dashboard must keep drawing
(and take the next key) meanwhile. Calls run on a small pool; their order is kept per instance by the daemon
itself. Keys typed in interactive mode go through one thread of their own, in order: two keystrokes must
never overtake each other.

`osc52()` and `notify_argv()` are pure: what to write to the terminal and what to run.
"""

from __future__ import annotations

import base64
import concurrent.futures
import queue
import shutil
import subprocess
from typing import Any, Literal

import msgspec

from frontends.daemon.client import DaemonClient
from frontends.daemon.errors import DaemonError, DaemonNotRunning
from frontends.dashboard.model import Call, SendKeys

__all__ = ["CALL_TIMEOUT_S", "EffectRunner", "Outcome", "key_requests", "notify_argv", "osc52"]

CALL_TIMEOUT_S = 90.0
"""An action may take as long as the daemon allows its own (a start, a pause that commits): 60 s and more."""
KEYS_TIMEOUT_S = 5.0
NOTIFY_TIMEOUT_S = 5.0


class Outcome(msgspec.Struct, frozen=True):
    """What became of an effect: the toast to show, and whether the fleet should be fetched again now."""

    text: str
    level: Literal["info", "warn", "error"] = "info"
    refresh: bool = False
    call: Call | None = None  # the request, when its answer is shown (`Call.reply`: keys.on_reply)
    answer: Any = None


def osc52(text: str) -> str:
    """The escape sequence that puts `text` on the clipboard of the terminal (and of tmux, with
    `set-clipboard on`): OSC 52, base64."""
    return "\x1b]52;c;" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "\a"


def notify_argv(text: str, level: str = "info") -> list[str] | None:
    """The notify-send command for a desktop notification, or None when notify-send is not installed (the
    caller rings the terminal's bell instead)."""
    program = shutil.which("notify-send")
    if program is None:
        return None
    urgency = {"error": "critical", "warn": "normal"}.get(level, "low")
    return [program, "--app-name=corral", f"--urgency={urgency}", "corral", text]


class EffectRunner:
    """Runs effects on threads of its own and puts an `Outcome` for each on `outcomes`."""

    def __init__(self, client: DaemonClient, outcomes: queue.Queue[Outcome]) -> None:
        self.client = client
        self.outcomes = outcomes
        self._calls = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="corral-dashboard-call")
        self._keys = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="corral-dashboard-keys")

    def close(self) -> None:
        """Stop taking work. Calls under way finish on their own (the daemon does what was asked)."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._keys.shutdown(wait=False, cancel_futures=True)

    def call(self, call: Call) -> None:
        self._calls.submit(self._call, call)

    def send_keys(self, keys: SendKeys, base: str) -> None:
        """Type `keys` to the agent, in order after the keys typed before."""
        self._keys.submit(self._send_keys, keys, base)

    def notify(self, text: str, level: str) -> bool:
        """A desktop notification; False when there is no notify-send (ring the bell)."""
        argv = notify_argv(text, level)
        if argv is None:
            return False
        self._calls.submit(_run_quietly, argv)
        return True

    # -- on the pool's threads -----------------------------------------------------------------------------

    def _call(self, call: Call) -> None:
        try:
            status, body = self.client.request(call.method, call.path, json=call.body, timeout=CALL_TIMEOUT_S)
        except DaemonNotRunning:
            self.outcomes.put(Outcome("the corral daemon is not running: nothing was done", "error"))
            return
        except DaemonError as exc:
            self.outcomes.put(Outcome(str(exc), "error", refresh=True))
            return
        if 200 <= status < 300:
            text = call.done or ("" if call.reply else f"{call.method} {call.path}: done")
            self.outcomes.put(Outcome(text, refresh=call.method != "GET", call=call, answer=body))
        else:
            self.outcomes.put(Outcome(_refusal(status, body), "error", refresh=True))

    def _send_keys(self, keys: SendKeys, base: str) -> None:
        from urllib.parse import quote

        path = f"{base}/instances/{quote(keys.title, safe='')}"
        for action, body in key_requests(keys.keys):
            try:
                status, answer = self.client.request(
                    "POST", f"{path}/{action}", json=body, timeout=KEYS_TIMEOUT_S
                )
            except DaemonError as exc:
                self.outcomes.put(Outcome(f"keys not sent to {keys.title}: {exc}", "error"))
                return
            if not 200 <= status < 300:
                self.outcomes.put(
                    Outcome(f"keys not sent to {keys.title}: {_refusal(status, answer)}", "error")
                )
                return


def key_requests(keys: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The API requests that type `keys` (tmux key names, or one literal character each) to an agent, in
    order: one `send-keys` for them all. Pure.

    Not `send`: it clears the agent's input line first (C-u, in both runtimes), which would erase what was
    typed a key before. A literal character is a key that names itself for both runtimes (tmux escapes a
    lone `;`); a space is `Space`, since a key name cannot hold one."""
    names = ["Space" if key == " " else key for key in keys if key]
    return [("send-keys", {"keys": names})] if names else []


def _refusal(status: int, body: Any) -> str:
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return f"the corral daemon answered {status}: {body}"


def _run_quietly(argv: list[str]) -> None:
    try:
        subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=NOTIFY_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        pass
