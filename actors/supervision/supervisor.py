"""A supervisor with Erlang/OTP semantics, as a pykka actor.

Strategies one_for_one, one_for_all and rest_for_one; restart types permanent, transient and temporary; a
sliding-window restart intensity — more than `max_restarts` restarts within `period_s` and the supervisor
stops its remaining children in reverse start order and terminates with reason `shutdown` carrying the cause,
so that its own supervisor decides by this supervisor's restart type (escalation: a permanent one is
restarted and counts against the parent's intensity; a transient one is not restarted, as in OTP);
significant children and `auto_shutdown` (OTP 24); per-child exponential backoff; ordered shutdown with a
timeout per child.

Why it is safe without links or monitors:
- every child generation reports exactly one `ChildExit` (see `base.py`), and a report whose generation is
  not the running one is stale and ignored — so a late report from a child we already stopped, or from a
  generation that failed to start, never triggers a second restart;
- a restart after backoff is a `RestartDue` message from the scheduler, carrying a token that any later
  decision invalidates: the supervisor never sleeps, so it keeps handling exits and requests meanwhile;
- a failed restart is told back to the supervisor as a new message (`RestartFailed`) rather than handled
  recursively, so a child that can never start uses up the intensity and escalates instead of overflowing
  the stack.

Children must only `tell` their supervisor, never `ask` it: the supervisor may be blocked stopping a sibling.
"""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Sequence
from typing import Any

import msgspec
import pykka

from actors.supervision.base import SupervisedActor
from actors.supervision.context import ChildContext, ChildHandle
from actors.supervision.messages import (
    ChildExit,
    ChildInfo,
    ChildStartResult,
    GetStatistics,
    RestartChild,
    RestartDue,
    RestartFailed,
    StartChild,
    SupervisorStats,
    TerminateChild,
    WhichChildren,
)
from actors.supervision.spec import ChildSpec, Restart, Strategy, SupervisorFlags
from protocols.errors import ConflictError, NotFoundError, SupervisionError
from protocols.messages import (
    ChildExited,
    ChildRestarting,
    ChildStarted,
    ChildStartFailed,
    ExitReason,
    SupervisorEscalated,
    SupervisorGaveUp,
)

__all__ = ["Supervisor"]

RUNNING, RESTARTING, STOPPED = "running", "restarting", "stopped"


class _Child:
    """A supervisor's record of one child; touched only on the supervisor's thread."""

    __slots__ = (
        "due",
        "failures_in_row",
        "generation",
        "handle",
        "last_exit",
        "pending_group",
        "ref",
        "restarts",
        "spec",
        "started_at",
        "state",
        "timer",
        "token",
    )

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.generation = 0
        self.ref: pykka.ActorRef[Any] | None = None
        self.handle: ChildHandle | None = None
        self.started_at: float | None = None
        self.state = STOPPED
        self.restarts = 0
        self.failures_in_row = 0
        self.token = 0
        self.timer: Any = None
        self.due: float | None = None
        self.pending_group: tuple[str, ...] = ()
        self.last_exit = ""  # why its last generation ended, or failed to start ("" none has)


class Supervisor(SupervisedActor):
    """Starts its children in order, restarts them by its strategy, and escalates past its intensity."""

    def __init__(self, ctx: ChildContext, flags: SupervisorFlags, children: Sequence[ChildSpec] = ()) -> None:
        super().__init__(ctx)
        ids = [spec.id for spec in children]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"supervisor {ctx.path}: duplicate child ids {duplicates}")
        self.flags = flags
        self._initial = tuple(children)
        self._children: dict[str, _Child] = {}
        self._window: collections.deque[float] = collections.deque()
        self._total_restarts = 0
        self._tokens = itertools.count(1)
        self._generations: dict[str, int] = {}
        """The last generation started under each child id, kept after a child is removed: a new child with a
        reused id (a task's next round of an agent) goes on counting, so a late exit report from the removed
        one can never be taken for the new one's (it would end the new child in the supervisor's books while
        the actor runs on, unsupervised)."""
        self._zombies: dict[str, int] = {}
        """Child ids whose last generation did not stop in time (thread abandoned) → that generation: the id
        is not given to a new child until it has stopped at last (OTP's name semantics: a registered name is
        free only once its process is gone)."""

    # -- lifecycle ----------------------------------------------------------------------------------------

    def started(self) -> None:
        for spec in self._initial:
            child = _Child(spec)
            self._children[spec.id] = child
            reason = self._start(child, restarted=False)
            if reason is not None:
                self._stop_all_children()
                raise SupervisionError(f"{self.ctx.path}: child {spec.id} failed to start: {reason}")

    def stopping(self) -> None:
        # A supervisor that ends, for any reason, takes its children with it (reverse start order).
        self._stop_all_children()

    def crashed(self, exc: BaseException) -> None:
        parent = self.ctx.path.rpartition("/")[0] or "process"
        self._publish(
            SupervisorEscalated(
                supervisor=self.ctx.path, parent=parent, reason=ExitReason.from_exception(exc)
            )
        )

    # -- messages -----------------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildExit):
            return self._on_child_exit(message)
        if isinstance(message, RestartDue):
            return self._on_restart_due(message)
        if isinstance(message, RestartFailed):
            return self._on_restart_failed(message)
        if isinstance(message, StartChild):
            return self._on_start_child(message)
        if isinstance(message, TerminateChild):
            return self._terminate_child(message.child_id)
        if isinstance(message, RestartChild):
            return self._restart_child(message.child_id)
        if isinstance(message, WhichChildren):
            return self.which_children()
        if isinstance(message, GetStatistics):
            return self.statistics()
        return super().on_receive(message)

    def which_children(self) -> tuple[ChildInfo, ...]:
        now = self.ctx.env.clock.monotonic()
        return tuple(self._info(c, now) for c in self._children.values())

    @staticmethod
    def _info(c: _Child, now: float) -> ChildInfo:
        return ChildInfo(
            id=c.spec.id,
            generation=c.generation,
            state=c.state,
            restart=c.spec.restart.value,
            kind=c.spec.kind,
            restarts=c.restarts,
            failures_in_row=c.failures_in_row,
            restart_due_in_s=None if c.due is None else max(0.0, c.due - now),
            last_exit=c.last_exit,
        )

    def statistics(self) -> SupervisorStats:
        self._trim_window(self.ctx.env.clock.monotonic())
        return SupervisorStats(
            path=self.ctx.path,
            strategy=self.flags.strategy.value,
            max_restarts=self.flags.max_restarts,
            period_s=self.flags.period_s,
            restarts_in_window=len(self._window),
            total_restarts=self._total_restarts,
            children=self.which_children(),
        )

    # -- starting -----------------------------------------------------------------------------------------

    def _start(self, child: _Child, *, restarted: bool) -> ExitReason | None:
        """Start the next generation of `child` and wait for its `started()`; the reason if it failed."""
        spec = child.spec
        if spec.id in self._zombies:  # its abandoned generation may still run: not two at once
            return ExitReason.error("StillStopping", str(self._still_stopping(spec.id)))
        child.generation = max(child.generation, self._generations.get(spec.id, 0)) + 1
        self._generations[spec.id] = child.generation
        env = self.ctx.env
        ctx = ChildContext(
            child_id=spec.id,
            generation=child.generation,
            parent=self.actor_ref,
            path=f"{self.ctx.path}/{spec.id}",
            env=env,
        )
        reason: ExitReason | None = None
        try:
            ref = spec.start(ctx)
        except Exception as exc:
            reason = ExitReason.from_exception(exc)
        else:
            if not ctx.handle.wait_started(spec.start_timeout_s):
                ctx.handle.shutdown_requested = True
                ctx.handle.brutal_kill()
                ref.stop(block=False)
                reason = ExitReason.error(
                    "StartTimeout", f"started() did not return within {spec.start_timeout_s:g} s"
                )
            else:
                reason = ctx.handle.start_error
        if reason is not None:
            child.state = STOPPED
            child.last_exit = f"failed to start: {reason}"
            self._publish(
                ChildStartFailed(
                    supervisor=self.ctx.path, child_id=spec.id, generation=child.generation, reason=reason
                )
            )
            return reason
        child.ref, child.handle = ref, ctx.handle
        child.started_at = env.clock.monotonic()
        child.state, child.due, child.pending_group = RUNNING, None, ()
        env.directory.register(ctx.path, ref)
        self._publish(
            ChildStarted(
                supervisor=self.ctx.path, child_id=spec.id, generation=child.generation, restarted=restarted
            )
        )
        self.child_started(spec.id, child.generation, restarted)
        return None

    def _on_start_child(self, message: StartChild) -> ChildInfo | None:
        spec: ChildSpec = message.spec
        error: Exception | None = None
        reason: ExitReason | None = None
        if spec.id in self._children:
            error = ConflictError(f"a child with id {spec.id!r} already exists under {self.ctx.path}")
            reason = ExitReason.error("ConflictError", str(error))
        elif spec.id in self._zombies:
            error = self._still_stopping(spec.id)
            reason = ExitReason.error("ConflictError", str(error))
        else:
            child = _Child(spec)
            self._children[spec.id] = child
            reason = self._start(child, restarted=False)
            if reason is not None:
                del self._children[spec.id]
                error = SupervisionError(f"{self.ctx.path}/{spec.id} failed to start: {reason}")
        if message.reply_to is not None:
            try:
                message.reply_to.tell(ChildStartResult(spec.id, ok=error is None, reason=reason))
            except pykka.ActorDeadError:
                pass
            return None
        if error is not None:
            raise error
        return self._info(self._children[spec.id], self.ctx.env.clock.monotonic())

    # -- exits and restarts -------------------------------------------------------------------------------

    def _on_child_exit(self, message: ChildExit) -> None:
        if self._zombies.get(message.child_id) == message.generation:
            del self._zombies[message.child_id]  # an abandoned generation stopped at last: its id is free
        child = self._children.get(message.child_id)
        if child is None or child.generation != message.generation or child.ref is None:
            return  # stale: a generation we stopped ourselves, or one that never finished starting
        self.ctx.env.directory.unregister(f"{self.ctx.path}/{child.spec.id}", child.ref)
        child.ref, child.handle, child.state = None, None, STOPPED
        child.last_exit = str(message.reason)
        restart = child.spec.restart.wants_restart(message.reason)
        self._publish(
            ChildExited(
                supervisor=self.ctx.path,
                child_id=child.spec.id,
                generation=child.generation,
                reason=message.reason,
                restart_type=child.spec.restart.value,
                restarting=restart,
            )
        )
        self.child_exited(child.spec.id, child.generation, message.reason, restart)
        if child.spec.restart is Restart.TEMPORARY:
            del self._children[child.spec.id]
        elif restart:
            self._restart(child, message.reason)
            return
        if child.spec.significant:
            self._significant_ended(child.spec.id, message.reason)

    def _significant_ended(self, child_id: str, reason: ExitReason) -> None:
        """OTP's auto_shutdown: a significant child ended by itself and stays down."""
        mode = self.flags.auto_shutdown
        if mode == "never":
            return
        if mode == "all_significant" and any(
            c.spec.significant and c.ref is not None for c in self._children.values()
        ):
            return
        self._stop_all_children()
        self.exit(ExitReason.shutdown("AutoShutdown", f"significant child {child_id} ended: {reason}"))

    def _on_restart_failed(self, message: RestartFailed) -> None:
        child = self._children.get(message.child_id)
        if child is None or child.generation != message.generation or child.ref is not None:
            return
        self._restart(child, message.reason)

    def _restart(self, child: _Child, reason: ExitReason) -> None:
        """Count the restart against the intensity, then restart the strategy's group after the backoff."""
        now = self.ctx.env.clock.monotonic()
        self._window.append(now)
        self._trim_window(now)
        self._total_restarts += 1
        child.restarts += 1
        if len(self._window) > self.flags.max_restarts:
            self._give_up(child, reason)
            return
        backoff = child.spec.backoff
        if (
            backoff is not None
            and child.started_at is not None
            and now - child.started_at >= backoff.reset_after_s
        ):
            child.failures_in_row = 0
        delay = backoff.delay(child.failures_in_row, self.ctx.env.rng) if backoff else 0.0
        child.failures_in_row += 1

        group = self._group(child)
        for other in reversed(group):
            if other is not child:
                self._terminate(other)
                if other.spec.restart is Restart.TEMPORARY:
                    del self._children[other.spec.id]
        group = [c for c in group if c.spec.id in self._children]
        self._publish(
            ChildRestarting(
                supervisor=self.ctx.path,
                child_id=child.spec.id,
                generation=child.generation + 1,
                delay_s=delay,
                attempt=child.failures_in_row,
                reason=reason,
            )
        )
        if delay <= 0 or self.ctx.env.scheduler is None:
            self._start_group(group)
            return
        child.token = next(self._tokens)
        child.due = now + delay
        child.pending_group = tuple(c.spec.id for c in group)
        for c in group:
            c.state = RESTARTING
        child.timer = self.ctx.env.scheduler.call_later(
            delay, functools.partial(self._tell_self, RestartDue(child.spec.id, child.token))
        )

    def _on_restart_due(self, message: RestartDue) -> None:
        child = self._children.get(message.child_id)
        if child is None or child.token != message.token:
            return  # superseded by a later decision
        child.token, child.timer, child.due = 0, None, None
        self._start_group([self._children[i] for i in child.pending_group if i in self._children])

    def _start_group(self, group: list[_Child]) -> None:
        for child in group:
            if child.ref is not None:
                continue
            reason = self._start(child, restarted=True)
            if reason is not None:
                child.state = RESTARTING
                self._tell_self(RestartFailed(child.spec.id, child.generation, reason))
                return  # the retry restarts this child's group, which holds the rest of this one

    def _group(self, child: _Child) -> list[_Child]:
        """The children the strategy restarts with `child`, in start order."""
        children = list(self._children.values())
        strategy = self.flags.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            return children
        if strategy is Strategy.REST_FOR_ONE:
            return children[children.index(child) :]
        return [child]

    def _give_up(self, child: _Child, reason: ExitReason) -> None:
        """Past the intensity: stop every child, tell the subclass, and shut down with the cause (OTP's
        `reached_max_restart_intensity`): the parent decides by this supervisor's restart type."""
        restarts = len(self._window)
        self._publish(
            SupervisorGaveUp(
                supervisor=self.ctx.path,
                restarts=restarts,
                period_s=self.flags.period_s,
                last_child=child.spec.id,
                reason=reason,
            )
        )
        self._stop_all_children()
        self._window.clear()
        cause = (
            f"{self.ctx.path} gave up: {restarts} restarts within {self.flags.period_s:g} s "
            f"(max_restarts {self.flags.max_restarts}); last: {child.spec.id}: {reason}"
        )
        self.gave_up(SupervisionError(cause), child.spec.id, reason)
        shutdown = ExitReason.shutdown("ReachedMaxRestartIntensity", cause)
        parent = self.ctx.path.rpartition("/")[0] or "process"
        self._publish(SupervisorEscalated(supervisor=self.ctx.path, parent=parent, reason=shutdown))
        self.exit(shutdown)

    def child_started(self, child_id: str, generation: int, restarted: bool) -> None:
        """Hook: a child's new generation finished its `started()` (runs on the supervisor's thread)."""

    def child_exited(self, child_id: str, generation: int, reason: ExitReason, restarting: bool) -> None:
        """Hook: a running child ended by itself (not stopped by this supervisor), before any restart."""

    def gave_up(self, error: SupervisionError, child_id: str, reason: ExitReason) -> None:
        """Hook: past the intensity, after every child was stopped and before this supervisor shuts down
        (runs on the supervisor's thread). An Instance records itself `failed` with the reason here."""

    def _trim_window(self, now: float) -> None:
        horizon = now - self.flags.period_s
        while self._window and self._window[0] <= horizon:
            self._window.popleft()

    # -- stopping -----------------------------------------------------------------------------------------

    def _terminate(self, child: _Child) -> None:
        """Stop one child within its shutdown time; past it, run its kill hooks and abandon its thread."""
        if child.timer is not None:
            child.timer.cancel()
        child.token, child.timer, child.due = 0, None, None
        ref, handle = child.ref, child.handle
        child.ref, child.handle, child.state = None, None, STOPPED
        if ref is None or handle is None:
            return
        path = f"{self.ctx.path}/{child.spec.id}"
        self.ctx.env.directory.unregister(path, ref)
        handle.shutdown_requested = True
        reason = ExitReason.shutdown()
        try:
            ref.stop(block=True, timeout=child.spec.shutdown_s)
        except pykka.Timeout:
            handle.brutal_kill()
            self._zombies[child.spec.id] = child.generation
            reason = ExitReason.error(
                "ShutdownTimeout",
                f"did not stop within {child.spec.shutdown_s:g} s: kill hooks ran, thread abandoned",
            )
        self._publish(
            ChildExited(
                supervisor=self.ctx.path,
                child_id=child.spec.id,
                generation=child.generation,
                reason=reason,
                restart_type=child.spec.restart.value,
                restarting=False,
            )
        )

    def _terminate_child(self, child_id: str) -> None:
        child = self._children.get(child_id)
        if child is None:
            raise NotFoundError(f"no child {child_id!r} under {self.ctx.path}")
        self._terminate(child)
        del self._children[child_id]

    def _restart_child(self, child_id: str) -> ChildInfo:
        child = self._children.get(child_id)
        if child is None:
            raise NotFoundError(f"no child {child_id!r} under {self.ctx.path}")
        if child.ref is not None:
            raise ConflictError(f"{self.ctx.path}/{child_id} is running: terminate it first")
        if child_id in self._zombies:
            raise self._still_stopping(child_id)
        if child.timer is not None:
            child.timer.cancel()
        child.token, child.timer, child.due, child.failures_in_row = 0, None, None, 0
        reason = self._start(child, restarted=True)
        if reason is not None:
            raise SupervisionError(f"{self.ctx.path}/{child_id} failed to start: {reason}")
        return self._info(child, self.ctx.env.clock.monotonic())

    def _still_stopping(self, child_id: str) -> ConflictError:
        return ConflictError(
            f"{self.ctx.path}/{child_id} did not stop in time and is still stopping: its id is free once it "
            "has; try again in a moment"
        )

    def _stop_all_children(self) -> None:
        for child in reversed(list(self._children.values())):
            self._terminate(child)

    # -- helpers ------------------------------------------------------------------------------------------

    def _tell_self(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass  # we stopped meanwhile: nothing left to restart

    def _publish(self, event: Any) -> None:
        env = self.ctx.env
        env.publish(msgspec.structs.replace(event, ts=env.clock.now().timestamp()))
