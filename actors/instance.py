"""An Instance: one agent — its runtime, supervised with backoff, and its status with the evidence for it.

    Instance (a Supervisor, one_for_one, e.g. 3 restarts in 60 s)
    └── runtime   TmuxRuntime | PtyRuntime | SdkRuntime, restart transient, exponential backoff

When the agent dies abnormally its runtime ends with the reason and is restarted after a backoff. The runtime
is the Instance's significant child and the Instance shuts itself down with it (OTP's `auto_shutdown =
any_significant`): an agent that exits 0, or is killed by request, ends its Instance with status `exited`;
past the intensity the Instance records `failed` with the reason and shuts down (reason `shutdown`, carrying
the cause). Its own spec is transient, so its Project does not restart it — one broken agent never takes its
project down — and keeps it as an ended child: listed with its last status, its last screen and its
conversation id, until a person restarts it (a fresh Instance continuing the conversation) or deletes it.
An ended Instance holds no thread, no runtime and no file descriptor.

Status is decided by `protocols.status.decide` from evidence the Instance gathers without polling: the
runtime's activity notices (the screen is captured only after output, coalesced), SDK turn events, exits
and restarts, and the `wake_at` the decision asks for (ready is reached by a still screen, i.e. by time
passing). Every change is published as `InstanceStatusChanged` with its reason; keys the decision wants
sent (dismissing a start screen, auto-yes) are sent and noted.

Persistence. With `spec.record` and `spec.store_path` the Instance keeps its row of the store's `instances`
table: written when it starts and at every status change (with the agent's pid and, for sdk, the
conversation id), and waited for. In the daemon the write is handed to `spec.recorder` (the daemon's store
thread, which owns a connection); without one the Instance opens a Store on its own thread — a connection is
never shared between threads. Not one connection per Instance in the daemon: SQLite defers closing a
connection's file while other connections of the process hold locks on it, so every closed one would keep a
descriptor until the daemon exits. A restarted daemon reads these rows to bring the agents back
(`spec.start_paused`: as they were, paused, without starting the runtime).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import msgspec
import pykka

from actors.runtimes.base import (
    LAST_SCREEN_LINES,
    AgentLastScreen,
    Capture,
    Destroy,
    GetAttachInfo,
    GetMetrics,
    GetRuntimeStats,
    RuntimeActivity,
    RuntimeAdopted,
    RuntimeSpec,
    Send,
    SendKeys,
    bounded_screen,
    exit_details,
)
from actors.runtimes.factory import RUNTIME, RuntimeFactory, RuntimeKind
from actors.runtimes.sdk import SdkNotice
from actors.supervision import StartChild, Supervisor, SupervisorFlags
from actors.supervision.context import ChildContext
from protocols.errors import ConflictError, SupervisionError
from protocols.harness import Harness
from protocols.messages import ExitReason, InstanceNote, InstanceStatusChanged
from protocols.prompts import restart_prompt
from protocols.records import InstanceRecord
from protocols.sdk import SessionStarted
from protocols.status import (
    AgentStatus,
    Decision,
    Evidence,
    PermissionPolicy,
    TrackerState,
    decide,
    read_screen,
)

__all__ = [
    "RUNTIME",
    "AgentEnded",
    "GetInstanceInfo",
    "Instance",
    "InstanceAnswer",
    "InstanceCapture",
    "InstanceInfo",
    "InstanceKill",
    "InstancePause",
    "InstanceRestart",
    "InstanceResume",
    "InstanceSend",
    "InstanceSendKeys",
    "InstanceSpec",
    "StatusNotice",
]

log = logging.getLogger(__name__)

CAPTURE_DELAY_S = 0.05  # coalesce a burst of output into one capture
ASK_TIMEOUT_S = 10.0


class InstanceSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Who the agent is and how it is watched. `runtime` is what its runtime starts the first time;
    `restart_argv`, when set, is the command of every later start (the harness's continue arguments: the
    conversation goes on instead of the task starting over); `factory` makes the runtime child."""

    project: str
    title: str
    harness: Harness
    mode: RuntimeKind
    runtime: RuntimeSpec
    factory: RuntimeFactory
    restart_argv: tuple[str, ...] = ()
    conversation_id: str = ""
    """The conversation id the agent was launched with (claude's `--session-id`, tmux and pty); an sdk
    agent's comes from its transport, a recorded one from its row."""
    first_prompt: str = ""  # sent once the agent is ready (tmux/pty) or as the first turn (sdk)
    task_prompt: str = ""
    """A task's agent: its task, as its first prompt gave it. After any start that did not take a live agent
    back (a crash, a restart, a resume, a session lost while the daemon was down) the agent is told it was
    restarted and given this again, with the command that finishes its step, rather than left idle."""
    comeback: str = ""
    """Why this spec starts an agent that ran before (recovered, restarted): what the restart prompt says."""
    prompt_file: str = ""  # written (relative to cwd) before the runtime starts
    prompt_file_text: str = ""
    cwd: str = ""
    auto_yes: bool = False
    permissions: PermissionPolicy = msgspec.field(default_factory=PermissionPolicy)
    flags: SupervisorFlags = SupervisorFlags(max_restarts=3, period_s=60.0)
    resource_profile: str = "normal"
    task: str = ""
    agent_type: str = ""
    worktree: Any = None  # actors.git.Worktree: paused and resumed with the agent (unless shared)
    notes: tuple[str, ...] = ()  # what the launch could not do as asked (sdk fallback, missing nice)
    record: InstanceRecord | None = None  # its row in the store: the spec essentials, written with its state
    store_path: str = ""  # the database the row is written to ("" with record None: not persisted)
    recorder: Any = None  # writes the row on a thread that owns a connection: `recorder(row)` → a Future
    start_paused: bool = False  # recovered paused: the runtime is not started until a resume


# -- what people (the daemon, the CLI through it) ask an Instance ------------------------------------------


class InstanceSend(msgspec.Struct, frozen=True):
    text: str
    enter: bool = True


class InstanceSendKeys(msgspec.Struct, frozen=True):
    keys: tuple[str, ...]


class InstanceCapture(msgspec.Struct, frozen=True):
    lines: int | None = 50
    ansi: bool = False


class InstanceRestart(msgspec.Struct, frozen=True):
    """Kill the agent (if it runs) and start it again; resets a failed instance."""


class InstanceKill(msgspec.Struct, frozen=True):
    """Kill the agent and everything it started; the instance stays, exited, until restarted. `reason`
    replaces "killed by request" when the kill is corral's own (a task that is over stops its agents)."""

    reason: str = ""


class InstancePause(msgspec.Struct, frozen=True):
    """Stop the agent, commit its uncommitted work, remove its worktree and keep the branch."""


class InstanceResume(msgspec.Struct, frozen=True):
    """Put the worktree back (refused if its branch is checked out elsewhere) and start the agent again."""


class GetInstanceInfo(msgspec.Struct, frozen=True):
    pass


class InstanceAnswer(msgspec.Struct, frozen=True):
    """Answer the question or permission prompt on the agent's screen with its own keys for yes (or no):
    what a person means by "y", whatever the harness's menu looks like → InstanceInfo. ConflictError when
    the screen shows nothing to answer."""

    yes: bool = True


class InstanceInfo(msgspec.Struct, frozen=True):
    project: str
    title: str
    status: str
    reason: str
    since: float
    mode: str
    restarts: int
    resource_profile: str
    task: str = ""
    agent_type: str = ""
    attach: Any = None
    metrics: Any = None
    conversation_id: str = ""  # claude's session id (sdk, tmux, pty), codex's thread id (sdk)


class _Evaluate(msgspec.Struct, frozen=True):
    token: int


class AgentEnded(msgspec.Struct, frozen=True, kw_only=True):
    """Told to the parent (the Project) when the agent reaches exited or failed, just before the Instance
    shuts down: the Project keeps `info` and `last_screen` to show the ended instance, and a task's wave task
    completes or fails at once rather than at the next reconciliation. `created_at` (the instance row's stamp)
    tells this run of a title from an earlier one; `worked`: the agent was seen working after its prompt."""

    title: str
    task: str
    status: str
    reason: str
    worked: bool
    killed: bool
    created_at: str
    attempt_key: str = ""
    info: InstanceInfo | None = None
    last_screen: str = ""
    urn: str = ""
    """The Instance actor that ended: a Project that has started another Instance with the title since (a
    task's next round) must not take this late message for the new one's end."""


class StatusNotice(msgspec.Struct, frozen=True):
    """Told to the parent (the Project) at every change of what the Instance shows — its status, its agent's
    start and end, its conversation id: the Project keeps what it needs to watch its tasks' agents (idle,
    waiting) and to post the instance board (actors/board.py) without asking each Instance in turn."""

    title: str
    status: str
    reason: str
    since: float  # monotonic, on the tree's clock
    urn: str = ""  # the Instance actor that tells it: a late notice from an earlier one of the title is stale
    info: InstanceInfo | None = None  # the Instance's info as `GetInstanceInfo` gives it, without metrics
    pid: int | None = None  # the agent's process while it runs (its metrics are read from /proc by pid)
    started_at: float | None = None  # when the agent's process started (time.monotonic), for its uptime


_ENDED = frozenset({AgentStatus.EXITED, AgentStatus.FAILED})


class Instance(Supervisor):
    """One agent under supervision. Runs on its own thread; its runtime child on another."""

    def __init__(self, ctx: ChildContext, spec: InstanceSpec) -> None:
        if spec.factory.kind != spec.mode:
            raise ValueError(f"instance {spec.title}: mode {spec.mode} but a {spec.factory.kind} runtime")
        memo = None
        if spec.mode == "sdk":
            from actors.runtimes.sdk import SessionMemo

            memo = SessionMemo(spec.runtime.sdk_session_id)
        first = spec.factory.child(spec.runtime, memo)
        again_spec = msgspec.structs.replace(
            spec.runtime, argv=spec.restart_argv or spec.runtime.argv, adopt_first=False
        )
        # Every start after the first continues the conversation (and creates a session: the old one is gone).
        self._again = spec.factory.child(again_spec, memo) if again_spec != spec.runtime else first
        super().__init__(ctx, msgspec.structs.replace(spec.flags, auto_shutdown="any_significant"), (first,))
        self.spec = spec
        self.state = TrackerState.start(ctx.env.clock.monotonic())
        self._restarts = 0
        self._alive = False
        self._killed = False
        self._last_screen = ""
        self._final_screen = False  # _last_screen is the one the runtime handed over as the agent ended
        self._last_words = ""  # what the agent said last, as it ended (AgentLastScreen)
        self._paused = False
        self._manual_restart = False
        self._start_reason = ""
        self._last_exit = ""
        self._prompt_sent = not spec.first_prompt
        self._pending = spec.first_prompt  # sent once the agent is ready: its first prompt, or a restart's
        self._input_sent_at: float | None = None
        self._last_output_at: float | None = None
        self._capture_token = 0
        self._capture_pending = False
        self._wake = None
        self._store: Any = None
        self._pid: int | None = None
        self._started_at: float | None = None  # the agent's process start (time.monotonic), from its runtime
        self._attach: Any = None  # how to attach to the running agent (asked of each runtime generation once)
        recorded = spec.record.sdk_session_id if spec.record is not None else ""
        self._sdk_session = recorded or spec.conversation_id
        self._worked = spec.record.worked if spec.record is not None else False
        self._quiet_since: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def started(self) -> None:
        self.ctx.handle.add_kill_hook(self._kill_agent_now)
        if self.spec.prompt_file and self.spec.prompt_file_text:
            path = Path(self.spec.cwd or ".") / self.spec.prompt_file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.spec.prompt_file_text)
        for note in self.spec.notes:
            self._note(note, "warn")
        self._open_store()
        if self.spec.start_paused:
            self._paused = True
            self.state = msgspec.structs.replace(
                self.state, status=AgentStatus.PAUSED, reason=self._recorded_reason("paused")
            )
            self._tell_and_record()
            return  # no runtime until a resume (`_start_again` adds it)
        super().started()
        self._tell_and_record()
        if self.spec.mode == "sdk" and self._pending:
            self._send_pending()

    def stopping(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
        if self.ctx.handle.killed:
            # Abandoned by its Project (it did not stop in time): a new Instance may hold its title by now, so
            # its agent must not live on for re-adoption, as an orderly stop leaves a tmux agent.
            self._stop_runtime("stopped after its supervisor gave up waiting")
        super().stopping()
        store, self._store = self._store, None
        if store is not None:
            store.close()

    # -- supervision hooks --------------------------------------------------------------------------------

    def child_started(self, child_id: str, generation: int, restarted: bool) -> None:
        if child_id != RUNTIME:
            return
        self._alive = True
        self._final_screen, self._last_words = False, ""
        child = self._children.get(RUNTIME)
        if child is not None:
            child.spec = self._again  # later starts continue the conversation
        if restarted and not self._manual_restart:
            self._restarts += 1
        stats = self._runtime_stats()
        self._pid = getattr(stats, "pid", None)
        self._started_at = getattr(stats, "started_at", None)
        try:
            self._attach = self._runtime_ask(GetAttachInfo())
        except Exception as exc:  # the runtime is going away already: its exit report follows
            log.debug("%s: no attach info: %s", self.spec.title, exc)
            self._attach = None
        adopted = bool(getattr(stats, "adopted", False))
        if self.spec.task_prompt and not adopted and (restarted or self.spec.comeback):
            if self._manual_restart:
                why = self._start_reason or "restarted by request"
            elif restarted:
                why = f"after it ended: {self._last_exit}" if self._last_exit else "after it ended"
            else:
                why = self.spec.comeback or "your session was started again"
            self._pending = restart_prompt(why, self.spec.task_prompt)
        self._manual_restart = False
        self._decide(Evidence(mode=self.spec.mode, alive=True, restarts=self._restarts))
        self._tell_and_record()
        if self.spec.mode == "sdk" and self._pending and generation > 1:
            self._send_pending()  # a restarted sdk agent resumed its conversation: give it its task again

    def child_exited(self, child_id: str, generation: int, reason: ExitReason, restarting: bool) -> None:
        if child_id != RUNTIME:
            return
        self._alive = False
        self._pid = self._started_at = self._attach = None
        self._last_exit = reason.message or str(reason)
        status, signal = exit_details(reason)
        if status is None and signal is None and reason.is_error:
            status = 1  # the runtime itself failed: treat as an abnormal exit
        self._decide(
            Evidence(
                mode=self.spec.mode,
                alive=False,
                exit_status=status,
                exit_signal=signal,
                restarts=self._restarts,
                killed=self._killed and not restarting,
                said=self._last_words,
            )
        )
        self._tell_status()  # its process is gone, whether or not the status changed
        if not restarting:
            said = f" (it said: {self._last_words})" if self._last_words else ""
            self._note(f"agent ended: {reason}{said}", "info" if not reason.is_error else "warn")
            self._tell_ended()  # then the Instance shuts down with its significant runtime

    def gave_up(self, error: SupervisionError, child_id: str, reason: ExitReason) -> None:
        """Past the intensity: record `failed` with the reason; then the Instance shuts down for good."""
        self._alive = False
        status, signal = exit_details(reason)
        why = f"gave up after {self.flags.max_restarts} restarts within {self.flags.period_s:g} s"
        agent_says = self._last_words or (
            reason.message.rsplit(" (exit status", 1)[0] if reason.is_error else ""
        )
        if agent_says and not agent_says.startswith(("exit status", "killed by")):
            why += f" (last error: {agent_says})"
        self._decide(
            Evidence(
                mode=self.spec.mode,
                alive=False,
                exit_status=status,
                exit_signal=signal,
                restarts=self._restarts,
                gave_up=True,
                give_up_reason=why,
            )
        )
        self._note(str(error), "error")
        self._tell_ended()

    # -- messages -----------------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RuntimeActivity):
            return self._on_activity(message)
        if isinstance(message, RuntimeAdopted):
            return self._on_adopted(message)
        if isinstance(message, AgentLastScreen):
            if self._current(message.child_id, message.generation):
                self._last_screen, self._last_words = message.screen, message.said
                self._final_screen = True
            return None
        if isinstance(message, SdkNotice):
            if self._current(message.child_id, message.generation):
                if (
                    isinstance(message.event, SessionStarted)
                    and message.event.session_id != self._sdk_session
                ):
                    self._sdk_session = message.event.session_id
                    self._tell_and_record()
                self._decide(
                    Evidence(mode="sdk", alive=True, restarts=self._restarts, sdk_events=(message.event,))
                )
            return None
        if isinstance(message, _Evaluate):
            return self._on_evaluate(message.token)
        if isinstance(message, InstanceSend):
            return self._send(message.text, message.enter)
        if isinstance(message, InstanceSendKeys):
            return self._runtime_ask(SendKeys(message.keys))
        if isinstance(message, InstanceCapture):
            return self._runtime_ask(Capture(message.lines, message.ansi))
        if isinstance(message, InstanceRestart):
            return self._restart_agent()
        if isinstance(message, InstanceKill):
            return self._kill(message.reason)
        if isinstance(message, InstancePause):
            return self._pause()
        if isinstance(message, InstanceResume):
            return self._resume()
        if isinstance(message, GetInstanceInfo):
            return self.info()
        if isinstance(message, InstanceAnswer):
            return self._answer(message.yes)
        return super().on_receive(message)

    def info(self) -> InstanceInfo:
        attach = metrics = None
        if self._runtime() is not None:
            try:
                attach = self._runtime_ask(GetAttachInfo())
                metrics = self._runtime_ask(GetMetrics())
            except Exception as exc:  # the runtime is going away: info without them
                log.debug("%s: info without runtime details: %s", self.spec.title, exc)
        return msgspec.structs.replace(self._card(), attach=attach, metrics=metrics)

    def _card(self) -> InstanceInfo:
        """The info without asking the runtime anything: what the Instance tells its Project at each change
        (attach as asked when the runtime started; no metrics — a list reads those from /proc by pid)."""
        return InstanceInfo(
            project=self.spec.project,
            title=self.spec.title,
            status=str(self.state.status),
            reason=self.state.reason,
            since=self.state.since,
            mode=self.spec.mode,
            restarts=self._restarts,
            resource_profile=self.spec.resource_profile,
            task=self.spec.task,
            agent_type=self.spec.agent_type,
            attach=self._attach if self._runtime() is not None else None,
            conversation_id=self._sdk_session,
        )

    # -- evidence -----------------------------------------------------------------------------------------

    def _on_activity(self, message: RuntimeActivity) -> None:
        if not self._current(message.child_id, message.generation):
            return
        self._last_output_at = message.at
        if not self._capture_pending:
            self._capture_pending = True
            self._schedule(CAPTURE_DELAY_S)

    def _on_adopted(self, message: RuntimeAdopted) -> None:
        """An adopted agent: read its screen now, still since its last output (not since the adoption)."""
        if not self._current(message.child_id, message.generation):
            return
        self._quiet_since = message.quiet_since
        self._capture_pending = True
        self._schedule(0.0)

    def _on_evaluate(self, token: int) -> None:
        if token != self._capture_token:
            return
        self._capture_pending = False
        self._wake = None
        screen = None
        if self._alive and self.spec.mode != "sdk":
            try:
                screen = self._runtime_ask(Capture(self.spec.harness.scan_lines, False))
            except Exception as exc:
                log.debug("%s: capture failed: %s", self.spec.title, exc)
            else:
                if not self._final_screen:
                    self._last_screen = screen
        self._decide(
            Evidence(
                mode=self.spec.mode,
                alive=self._alive,
                restarts=self._restarts,
                screen=screen,
                last_output_at=self._last_output_at,
                input_sent_at=self._input_sent_at,
                quiet_since=self._quiet_since,
            )
        )
        self._quiet_since = None  # it speaks of the first reading only

    def _decide(self, evidence: Evidence) -> None:
        now = self.ctx.env.clock.monotonic()
        if evidence.input_sent_at is None and self._input_sent_at is not None:
            evidence = msgspec.structs.replace(evidence, input_sent_at=self._input_sent_at)
        if self._paused:
            evidence = msgspec.structs.replace(evidence, paused=True)
        decision: Decision = decide(
            self.state,
            evidence,
            self.spec.harness,
            now,
            auto_yes=self.spec.auto_yes,
            permissions=self.spec.permissions,
            title=self.spec.title,
        )
        self.state = decision.state
        if decision.change is not None:
            change = decision.change
            if change.status is AgentStatus.RUNNING and self._prompt_sent:
                self._worked = True
            self._tell_status()
            self.ctx.env.publish(
                InstanceStatusChanged(
                    project=self.spec.project,
                    instance=self.spec.title,
                    status=str(change.status),
                    previous=str(change.previous),
                    reason=change.reason,
                    ts=self.ctx.env.clock.now().timestamp(),
                )
            )
            self._persist()
        if decision.keys and self._alive:
            try:
                self._runtime_ask(SendKeys(decision.keys))
                self._note(decision.keys_reason or f"sent {' '.join(decision.keys)}")
            except Exception as exc:
                self._note(f"could not send {decision.keys}: {exc}", "warn")
        if self._pending and self.state.status is AgentStatus.READY and self._alive:
            self._send_pending()
        if decision.wake_at is not None and not self._capture_pending:
            self._schedule(max(0.0, decision.wake_at - now))

    def _tell_ended(self) -> None:
        """Tell the Project that the agent ended, with what it keeps to show the ended instance (and, for a
        task's agent, what its wave task needs). Told before the Instance's own exit report, so the Project
        has it by the time it sees the Instance gone."""
        parent = self.ctx.parent
        if parent is None or self.state.status not in _ENDED:
            return
        record = self.spec.record
        _tell(
            parent,
            AgentEnded(
                title=self.spec.title,
                task=self.spec.task,
                status=str(self.state.status),
                reason=self.state.reason,
                worked=self._worked,
                killed=self._killed,
                created_at=record.created_at if record is not None else "",
                attempt_key=record.attempt_key if record is not None else "",
                info=self.info(),
                last_screen=self._last_screen,
                urn=self.actor_urn,
            ),
        )

    def _tell_status(self) -> None:
        parent = self.ctx.parent
        if parent is not None:
            state = self.state
            pid, started = (self._pid, self._started_at) if self._alive else (None, None)
            notice = StatusNotice(
                self.spec.title,
                str(state.status),
                state.reason,
                state.since,
                self.actor_urn,
                info=self._card(),
                pid=pid,
                started_at=started,
            )
            _tell(parent, notice)

    def _tell_and_record(self) -> None:
        """Something a person sees changed without a status change (the agent started or ended, its
        conversation id): tell the Project, and record it."""
        self._tell_status()
        self._persist()

    def _publish_status(self, previous: str) -> None:
        self._tell_and_record()
        self.ctx.env.publish(
            InstanceStatusChanged(
                project=self.spec.project,
                instance=self.spec.title,
                status=str(self.state.status),
                previous=previous,
                reason=self.state.reason,
                ts=self.ctx.env.clock.now().timestamp(),
            )
        )

    def _schedule(self, delay: float) -> None:
        if self._wake is not None:
            self._wake.cancel()
        self._capture_token += 1
        scheduler = self.ctx.env.scheduler
        if scheduler is None:
            return
        ref = self.actor_ref
        self._wake = scheduler.call_later(
            delay, functools.partial(_tell, ref, _Evaluate(self._capture_token))
        )

    # -- acting on the agent ------------------------------------------------------------------------------

    def _send_pending(self) -> None:
        """Send the first prompt, or a restart's prompt; kept to try again when the agent cannot take it."""
        text, first = self._pending, not self._prompt_sent
        self._pending = ""
        self._prompt_sent = True
        try:
            self._send(text, True)
        except Exception as exc:
            self._pending, self._prompt_sent = text, not first
            self._note(f"could not send the {'first' if first else 'restart'} prompt yet: {exc}", "warn")
        else:
            if not first:
                self._note("told it was restarted, and given its task again")

    def _send(self, text: str, enter: bool) -> None:
        self._input_sent_at = self.ctx.env.clock.monotonic()
        self._runtime_ask(Send(text, enter))

    def _answer(self, yes: bool) -> InstanceInfo:
        """Send the keys the live prompt's harness gives for yes (or no), read off the screen now."""
        word = "yes" if yes else "no"
        if self.spec.mode == "sdk":
            raise ConflictError(
                f'instance "{self.spec.title}" is an sdk agent: it asks nothing on a screen; send it text'
            )
        screen = self._runtime_ask(Capture(self.spec.harness.scan_lines, False))
        prompt = read_screen(self.spec.harness, screen).prompt
        if prompt is None:
            raise ConflictError(
                f'instance "{self.spec.title}" shows no question or permission prompt to answer {word} to '
                f"(status {self.state.status}: {self.state.reason})"
            )
        keys = prompt.yes if yes else prompt.no
        if not keys:
            raise ConflictError(
                f'the {prompt.label} on "{self.spec.title}" has no {word} answer; send the keys it needs'
            )
        self._input_sent_at = self.ctx.env.clock.monotonic()
        self._runtime_ask(SendKeys(keys))
        self._note(f"answered {word} to the {prompt.label}: {prompt.text} (sent {' '.join(keys)})")
        return self.info()

    def _restart_agent(self) -> InstanceInfo:
        """Kill the agent if it runs, then start a fresh runtime generation with a fresh backoff."""
        self._stop_runtime("restart")
        self._killed = False
        self._restarts = 0
        self._start_again("restarted by request")
        return self.info()

    def _stop_runtime(self, why: str) -> None:
        """Destroy the agent and stop its runtime child synchronously, so its late exit report is stale."""
        if self._runtime() is not None:
            try:
                self._runtime_ask(Destroy())
            except Exception as exc:
                self._note(f"{why}: destroying the agent failed: {exc}", "warn")
        child = self._children.get(RUNTIME)
        if child is not None:
            self._terminate(child)
        self._alive = False

    def _start_again(self, reason: str) -> None:
        """A new start of the runtime, announced as `loading` with `reason` (restart and resume)."""
        previous = self.state.status
        self.state = msgspec.structs.replace(
            TrackerState.start(self.ctx.env.clock.monotonic()), reason=reason
        )
        self._publish_status(str(previous))
        self._manual_restart = True
        self._start_reason = reason
        if RUNTIME in self._children:
            self._restart_child(RUNTIME)
        else:  # recovered paused: its runtime was never started
            self._on_start_child(StartChild(self._again))
        self._note(reason)

    def _pause(self) -> InstanceInfo:
        """Pause = the agent stopped and its work kept on its branch: commit if dirty, worktree removed."""
        if self._paused:
            return self.info()
        self._stop_runtime("pause")
        detail = ""
        wt = self.spec.worktree
        if wt is not None and not wt.shared:
            from actors.git import pause_worktree

            result = pause_worktree(wt, self.spec.title)
            detail = (
                f": committed {result.commit[:7]} on {result.branch}" if result.commit else f" on {wt.branch}"
            )
        self._paused = True
        previous = self.state.status
        self.state = msgspec.structs.replace(
            self.state,
            status=AgentStatus.PAUSED,
            reason=f"paused{detail}",
            since=self.ctx.env.clock.monotonic(),
        )
        self._publish_status(str(previous))
        self._note(f"paused{detail}")
        return self.info()

    def _resume(self) -> InstanceInfo:
        if not self._paused:
            raise ConflictError(f"instance {self.spec.title} is not paused (status {self.state.status})")
        wt = self.spec.worktree
        if wt is not None and not wt.shared:
            from actors.git import resume_worktree

            resume_worktree(
                wt.repo_root, wt.branch, wt.path, base_commit=wt.base_commit
            )  # may refuse: stays paused
        self._paused = False
        self._start_again("resumed by request")
        return self.info()

    def _kill_agent_now(self) -> None:
        """The kill hook (run on the supervisor's thread when this Instance does not stop in time): kill the
        agent through its runtime's own kill hooks, which know its process group and session."""
        child = self._children.get(RUNTIME)
        handle = child.handle if child is not None else None
        if handle is not None:
            handle.brutal_kill()
        if self.spec.mode == "tmux":  # a tmux agent outlives its runtime's hooks: end its session too
            from actors.runtimes.tmux import default_server

            server = self.spec.factory.tmux_server or default_server()
            try:
                server.kill_session(self.spec.runtime.name)
            except Exception as exc:
                log.warning("%s: killing its session: %s", self.spec.title, exc)

    def _kill(self, why: str = "") -> list[int]:
        """Kill the agent, record "exited: killed by request", and end this Instance: with no agent to
        watch it would only hold a thread and a database connection until the daemon restarts. The Project
        keeps its child spec (transient, ended normally), so it is still listed, and restart starts it
        again (RestartChild: a new generation, continuing the conversation). Between two runs of a crashing
        agent (its restart pending, no runtime) the kill cancels the restart. A paused instance runs nothing,
        and is ended all the same (its work stays committed on its branch), so that it can be deleted."""
        self._killed = True
        self._keep_last_screen()
        survivors: list[int] = self._runtime_ask(Destroy()) if self._runtime() is not None else []
        child = self._children.get(RUNTIME)
        if child is not None:
            self._terminate(child)  # synchronously: its late exit report is stale, not "exit status 0"
        self._alive, self._pid, self._started_at, self._attach = False, None, None, None
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        self._capture_token += 1  # an evaluation already queued finds its token stale
        reason = (why or "killed by request") + (f"; survivors {survivors}" if survivors else "")
        if self._paused and self.spec.worktree is not None:
            reason += f" while paused (its work is on branch {self.spec.worktree.branch})"
        previous = self.state.status
        self.state = msgspec.structs.replace(
            self.state, status=AgentStatus.EXITED, reason=reason, since=self.ctx.env.clock.monotonic()
        )
        self._publish_status(str(previous))
        self._note(reason)
        self._tell_ended()
        self.exit(ExitReason.normal())
        return survivors

    def _keep_last_screen(self) -> None:
        """The agent's whole last screen, read before it is killed: what `capture` shows once it ended."""
        if self._runtime() is None or self._final_screen:
            return
        try:
            self._last_screen = bounded_screen(self._runtime_ask(Capture(LAST_SCREEN_LINES, False)))
        except Exception as exc:  # the screen last seen stays
            log.debug("%s: no last screen before the kill: %s", self.spec.title, exc)

    # -- persistence --------------------------------------------------------------------------------------

    def _open_store(self) -> None:
        if self.spec.record is None or not self.spec.store_path or self.spec.recorder is not None:
            return
        from actors.store import Store

        try:
            self._store = Store.open(Path(self.spec.store_path))
        except Exception as exc:  # the agent runs anyway; a restarted daemon will not know it
            self._note(f"cannot record the instance in {self.spec.store_path}: {exc}", "warn")

    def _persist(self) -> None:
        """Write the row: the spec essentials with the status, restarts, pid and conversation id of now."""
        record = self.spec.record
        if record is None or (self._store is None and self.spec.recorder is None):
            return
        row = msgspec.structs.replace(
            record,
            status=str(self.state.status),
            reason=self.state.reason,
            restarts=self._restarts,
            pid=self._pid if self._alive else None,
            sdk_session_id=self._sdk_session,
            worked=self._worked,
        )
        try:
            if self._store is not None:
                self._store.upsert_instance(row)
            else:
                self.spec.recorder(row).result(timeout=ASK_TIMEOUT_S)
        except Exception as exc:
            log.warning("%s: could not record the instance: %s", self.spec.title, exc)

    def _recorded_reason(self, default: str) -> str:
        record = self.spec.record
        return record.reason if record is not None and record.reason else default

    def _runtime_stats(self) -> Any:
        """The runtime's own statistics (its agent's pid, whether it adopted a live agent); None if it
        cannot say."""
        try:
            return self._runtime_ask(GetRuntimeStats())
        except Exception as exc:
            log.debug("%s: no runtime statistics: %s", self.spec.title, exc)
            return None

    # -- helpers ------------------------------------------------------------------------------------------

    def _runtime(self) -> pykka.ActorRef[Any] | None:
        return self.ctx.env.directory.get(f"{self.ctx.path}/{RUNTIME}")

    def _runtime_ask(self, message: Any) -> Any:
        ref = self._runtime()
        if ref is None:
            raise ConflictError(f"instance {self.spec.title} is not running (status {self.state.status})")
        return ref.ask(message, timeout=ASK_TIMEOUT_S)

    def _current(self, child_id: str, generation: int) -> bool:
        return child_id == RUNTIME and any(
            c.id == RUNTIME and c.generation == generation and c.state == "running"
            for c in self.which_children()
        )

    def _note(self, message: str, level: str = "info") -> None:
        self.ctx.env.publish(
            InstanceNote(
                project=self.spec.project,
                instance=self.spec.title,
                message=message,
                level=level,
                ts=self.ctx.env.clock.now().timestamp(),
            )
        )


def _tell(ref: pykka.ActorRef[Any], message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass
