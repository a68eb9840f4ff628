"""SdkRuntime: an agent driven over structured JSON on stdio (codex app-server, claude stream-json).

The agent is a plain subprocess in its own session (killed as a tree, like the others). One reader thread
turns its stdout into `SdkLine` messages and one writer thread feeds its stdin, so a hung agent that stops
reading can never block the actor. Everything the agent says is decoded by `protocols.sdk` into events:
the runtime answers approvals by the permission policy, keeps a transcript for `capture`, remembers the
conversation id in a `SessionMemo` that outlives the runtime's generations — so a restarted runtime resumes
the same conversation (codex `thread/resume`, claude `--resume`) — and tells its Instance each event.

Failure is always an answer, never a hang or a traceback: no reply to the handshake within
`handshake_timeout_s`, an error the agent reports (not logged in, no network), or its exit — each ends the
runtime with the agent's own message as the reason, and hands the Instance the transcript's tail as the
agent's last screen (what `corral instance capture` shows once it has ended).
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from actors.runtimes.base import (
    LAST_SCREEN_LINES,
    AttachInfo,
    RuntimeActor,
    RuntimeSpec,
    RuntimeStats,
    agent_exit_reason,
)
from actors.runtimes.logfile import RotatingLog
from actors.runtimes.procinfo import CpuSampler, RuntimeMetrics, kill_tree
from actors.supervision.context import ChildContext
from protocols.messages import ExitReason
from protocols.sdk import (
    AgentText,
    Approval,
    CodexClient,
    Connected,
    ResumeFailed,
    SdkError,
    SdkEvent,
    SessionStarted,
    TurnCompleted,
    TurnStarted,
    Unhandled,
    claude_control_response,
    claude_interrupt,
    claude_user_message,
    decode_claude,
)

__all__ = ["ApprovalPolicy", "SdkNotice", "SdkRuntime", "SessionMemo"]

log = logging.getLogger(__name__)

ApprovalPolicy = Callable[[Approval], bool | None]
"""Decides an approval: True allow, False deny, None ask a person (the instance shows `waiting`)."""


def ask_a_person(approval: Approval) -> bool | None:
    return None


class SessionMemo:
    """The conversation id, shared by every generation of one instance's SdkRuntime. Thread-safe."""

    def __init__(self, session_id: str = "") -> None:
        self._id = session_id
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            return self._id

    def set(self, session_id: str) -> None:
        with self._lock:
            self._id = session_id


class SdkLine(msgspec.Struct, frozen=True):
    generation: int
    line: bytes


class SdkEof(msgspec.Struct, frozen=True):
    generation: int
    returncode: int | None


class SdkWriteFailed(msgspec.Struct, frozen=True):
    generation: int
    error: str


class HandshakeDeadline(msgspec.Struct, frozen=True):
    generation: int


class SdkNotice(msgspec.Struct, frozen=True):
    """Told to the Instance for every decoded event, so its status can follow the turns."""

    child_id: str
    generation: int
    event: Any  # an SdkEvent


class SdkRuntime(RuntimeActor):
    kind = "sdk"

    def __init__(
        self,
        ctx: ChildContext,
        spec: RuntimeSpec,
        memo: SessionMemo | None = None,
        policy: ApprovalPolicy = ask_a_person,
        handshake_timeout_s: float = 30.0,
        transcript_lines: int = 5000,
        fast: bool = False,
    ) -> None:
        super().__init__(ctx, spec)
        if spec.sdk_transport not in ("codex", "claude"):
            raise ValueError(
                f"runtime {spec.name}: sdk needs a transport (codex or claude), got {spec.sdk_transport!r}"
            )
        self.memo = memo or SessionMemo(spec.sdk_session_id)
        self.policy = policy
        self.handshake_timeout_s = handshake_timeout_s
        self.fast = fast  # codex sdk-fast: serviceTier "fast" on thread/start
        self.codex = CodexClient() if spec.sdk_transport == "codex" else None
        self.transcript: collections.deque[str] = collections.deque(maxlen=transcript_lines)
        self._partial = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.turn_active = False
        self.pending_approval: Approval | None = None
        self.last_error = ""
        self._queued: list[str] = []
        self._interrupts = 0
        self._writes: queue.Queue[bytes | None] = queue.Queue()
        self._log: RotatingLog | None = None
        self._bytes_read = 0
        self._last_output: float | None = None
        self._started_at = time.monotonic()
        self._cpu = CpuSampler()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def started(self) -> None:
        spec = self.spec
        argv = list(spec.argv)
        session = self.memo.get()
        if self.codex is None and session and "--resume" not in argv:
            argv += ["--resume", session]
        self._log = RotatingLog(Path(spec.log_path), spec.log_max_bytes, spec.log_backups)
        env = {**os.environ, **dict(spec.env)}
        self.proc = subprocess.Popen(
            argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._started_at = time.monotonic()
        self.ctx.handle.add_kill_hook(self._kill)
        gen = self.ctx.generation
        threading.Thread(
            target=self._read_stdout, args=(gen,), name=f"sdk-read-{spec.name}", daemon=True
        ).start()
        threading.Thread(target=self._read_stderr, name=f"sdk-err-{spec.name}", daemon=True).start()
        threading.Thread(
            target=self._write_stdin, args=(gen,), name=f"sdk-write-{spec.name}", daemon=True
        ).start()
        if self.codex is not None:
            self._write(self.codex.initialize())
            if self.ctx.env.scheduler is not None:
                ref = self.actor_ref
                self.ctx.env.scheduler.call_later(
                    self.handshake_timeout_s, lambda: _tell(ref, HandshakeDeadline(gen))
                )
        else:
            self.ready = True  # claude reads user messages at once; its init arrives with the first turn

    def stopping(self) -> None:
        # sdk agents are children of the daemon: an orderly stop ends them; the next start resumes the
        # conversation from the memo.
        self._kill()
        self._writes.put(None)
        if self._log is not None:
            self._log.close()

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            kill_tree(proc.pid, sids=[proc.pid], grace_s=1.0)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass

    # -- threads ------------------------------------------------------------------------------------------

    def _read_stdout(self, generation: int) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        ref = self.actor_ref
        for line in iter(proc.stdout.readline, b""):
            if not _tell(ref, SdkLine(generation, line)):
                return
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        _tell(ref, SdkEof(generation, code))

    def _read_stderr(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stderr is not None
        for line in iter(proc.stderr.readline, b""):
            text = line.decode(errors="replace").rstrip()
            if text:
                self.last_error = text[-500:]  # a str assignment: atomic enough for "the last line"
            if self._log is not None:
                try:
                    self._log.write(b"[stderr] " + line)
                except (OSError, ValueError):
                    pass

    def _write_stdin(self, generation: int) -> None:
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        while (data := self._writes.get()) is not None:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                _tell(self.actor_ref, SdkWriteFailed(generation, str(exc)))
                return

    def _write(self, data: bytes) -> None:
        self._writes.put(data)

    # -- messages from the threads ------------------------------------------------------------------------

    def on_runtime_message(self, message: Any) -> Any:
        if getattr(message, "generation", None) != self.ctx.generation:
            return super().on_runtime_message(message)
        if isinstance(message, SdkLine):
            return self._on_line(message.line)
        if isinstance(message, SdkEof):
            return self._on_eof(message.returncode)
        if isinstance(message, HandshakeDeadline):
            if not self.ready:
                self._fail(f"no answer to the handshake within {self.handshake_timeout_s:g} s")
            return None
        if isinstance(message, SdkWriteFailed):
            return None  # the exit that follows says why
        return super().on_runtime_message(message)

    def _on_line(self, line: bytes) -> None:
        self._bytes_read += len(line)
        self._last_output = self.ctx.env.clock.monotonic()  # the Instance compares it with its own clock
        if self._log is not None:
            self._log.write(line)
        events: list[SdkEvent] = self.codex.decode(line) if self.codex else decode_claude(line)
        for event in events:
            self._on_event(event)
        if events:
            self.notify_activity(len(line), self._last_output)

    def _on_event(self, event: SdkEvent) -> None:
        if isinstance(event, Connected) and self.codex is not None:
            self._write(self.codex.initialized())
            session = self.memo.get()
            self._write(self.codex.thread_resume(session) if session else self._thread_start())
            return
        if isinstance(event, ResumeFailed) and self.codex is not None:
            self._add_text(f"\n[resume failed: {event.message}; started a new conversation]\n")
            self._write(self._thread_start())
            return
        if isinstance(event, SessionStarted):
            self.memo.set(event.session_id)
            if not self.ready:
                self.ready = True
                for text in self._queued:
                    self._send_now(text)
                self._queued.clear()
        elif isinstance(event, Unhandled):
            if event.reply is not None:
                self._write(event.reply)
            log.debug("%s: %s", self.spec.name, event.summary)
            return
        elif isinstance(event, AgentText):
            self._add_text(event.text)
        elif isinstance(event, TurnStarted):
            self.turn_active = True
        elif isinstance(event, TurnCompleted):
            self.turn_active = False
            if event.text and self.codex is None:
                self._add_text("\n")
            if event.error:
                self.last_error = event.error
                self._add_text(f"\n[error] {event.error}\n")
        elif isinstance(event, Approval):
            decision = self.policy(event)
            if decision is not None:
                self._answer(event, decision)
                return  # answered by policy: nothing for a person to see, so the status does not flash
            self.pending_approval = event
            self._add_text(f"\n[approval needed] {event.kind}: {event.summary}\n")
        elif isinstance(event, SdkError):
            self.last_error = event.message
            self._add_text(f"\n[error] {event.message}\n")
            if event.fatal and not self.ready:
                self._fail(event.message)
                return
        self._tell_parent(event)

    def _on_eof(self, returncode: int | None) -> None:
        reason = agent_exit_reason(
            returncode if returncode is not None and returncode >= 0 else None,
            -returncode if returncode is not None and returncode < 0 else None,
        )
        if reason.is_error and self.last_error:
            reason = ExitReason.error(reason.error_type, f"{self.last_error} ({reason.message})")
        self._hand_over_last_screen()
        self.exit(reason)

    def _fail(self, message: str) -> None:
        self.last_error = message
        self._kill()
        self._hand_over_last_screen()
        self.exit(ExitReason.error("AgentFailed", message))

    def _hand_over_last_screen(self) -> None:
        """The transcript's tail and the agent's last error, for the Instance, before this runtime ends."""
        self.notify_last_screen(self.capture(LAST_SCREEN_LINES, False), self.last_error)

    def _thread_start(self) -> bytes:
        assert self.codex is not None
        return self.codex.thread_start(self.spec.cwd, fast=self.fast)

    def _answer(self, approval: Approval, allow: bool) -> None:
        if self.codex is not None:
            self._write(self.codex.answer_approval(approval, allow))
        else:
            self._write(claude_control_response(approval, allow))
        self._add_text(f"\n[{'allowed' if allow else 'denied'}] {approval.kind}: {approval.summary}\n")
        if self.pending_approval is approval:
            self.pending_approval = None

    def _tell_parent(self, event: SdkEvent) -> None:
        parent = self.ctx.parent
        if parent is not None:
            _tell(parent, SdkNotice(self.ctx.child_id, self.ctx.generation, event))

    def _add_text(self, text: str) -> None:
        parts = (self._partial + text).split("\n")
        self._partial = parts.pop()
        self.transcript.extend(parts)

    # -- the runtime interface ----------------------------------------------------------------------------

    def handshake_done(self) -> bool:
        return self.ready

    def send(self, text: str, enter: bool = True) -> None:
        if not self.ready:
            self._queued.append(text)
            return
        self._send_now(text)

    def _send_now(self, text: str) -> None:
        self._add_text(f"\n> {text}\n")
        if self.codex is not None:
            if not self.codex.thread_id:
                self._queued.append(text)
                return
            self._write(self.codex.send_text(text))
        else:
            self._write(claude_user_message(text))
        self.turn_active = True

    def send_keys(self, keys: tuple[str, ...]) -> None:
        """For a pending approval: y/Enter allows, n/Escape denies; C-c (or Escape) interrupts the turn."""
        for key in keys:
            if key in ("C-c", "Escape") and self.pending_approval is None and self.turn_active:
                if self.codex is not None:
                    self._write(self.codex.interrupt())
                else:
                    self._interrupts += 1
                    self._write(claude_interrupt(f"corral_interrupt_{self._interrupts}"))
            elif self.pending_approval is not None and key in ("y", "Y", "Enter", "1"):
                self._answer(self.pending_approval, True)
            elif self.pending_approval is not None and key in ("n", "N", "Escape", "3"):
                self._answer(self.pending_approval, False)

    def capture(self, lines: int | None, ansi: bool) -> str:
        text = [*self.transcript, self._partial] if self._partial else list(self.transcript)
        return "\n".join(text if lines is None else text[-lines:])

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def destroy(self) -> list[int]:
        proc = self.proc
        if proc is None:
            return []
        survivors = kill_tree(proc.pid, sids=[proc.pid], grace_s=1.0)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        return survivors

    def attach_info(self) -> AttachInfo:
        return AttachInfo(kind="none", detail="sdk agents have no terminal: their transcript is the output")

    def metrics(self) -> RuntimeMetrics:
        return self._cpu.sample(self.proc.pid if self.proc else None, self._started_at)

    def resize(self, cols: int, rows: int) -> None:
        return None

    def statistics(self) -> RuntimeStats:
        return RuntimeStats(
            name=self.spec.name,
            kind=self.kind,
            alive=self.is_alive(),
            pid=self.proc.pid if self.proc else None,
            bytes_read=self._bytes_read,
            last_output_at=self._last_output,
            adopted=False,
            started_at=self._started_at,
        )


def _tell(ref: Any, message: Any) -> bool:
    try:
        ref.tell(message)
    except Exception:  # the actor is gone: nobody to tell
        return False
    return True
