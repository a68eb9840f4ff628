"""The one base class every supervised actor derives from.

pykka has no links or monitors, and an actor can end in four ways that pykka reports through three different
hooks (or none): a crash in a `tell` handler (`on_failure`), a crash in `on_start` (no hook at all), a stop
(`on_stop`), and a `SystemExit` that would stop every actor in the process. `SupervisedActor` turns all of
them into exactly one `ChildExit(child_id, generation, reason)` told to its supervisor, so crash detection
never relies on polling. Subclasses implement `started()`, `stopping()` and `crashed()`; the pykka hooks
are final.

An exception in an `ask` handler goes back to the caller and the actor lives on (pykka's behaviour, and
Akka's "resume"): that is how bad input is refused without a restart. An exception in a `tell` handler is a
crash.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, ClassVar

import pykka

from actors.supervision.context import ChildContext
from actors.supervision.messages import ChildExit
from protocols.chaos import InjectedCrash, InjectedFault
from protocols.messages import ExitReason

__all__ = ["ActorExit", "SupervisedActor"]

_FINAL_HOOKS = ("on_start", "on_stop", "on_failure")


class ActorExit(Exception):
    """Raised inside an actor to end it with an error reason (also what a SystemExit in an actor becomes)."""


class SupervisedActor(pykka.ThreadingActor):
    """A pykka actor that reports its one exit to its supervisor. Runs on its own daemon thread."""

    # Daemon threads: a hung actor that its supervisor abandoned must not keep the process alive.
    use_daemon_thread: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in _FINAL_HOOKS:
            if hook in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {hook}(); override started(), stopping() or crashed() instead "
                    "so that its exit is still reported to its supervisor"
                )

    def __init__(self, ctx: ChildContext) -> None:
        super().__init__()
        self.ctx = ctx
        self._exit_reason = ExitReason.normal()
        self._exiting = False
        self._reported = False

    # -- hooks for subclasses -----------------------------------------------------------------------------

    def started(self) -> None:
        """Set up, on the actor's thread, before any message. Raising fails the start."""

    def stopping(self) -> None:
        """Release what the actor owns. Runs on every exit: orderly stop, crash, or failed start."""

    def crashed(self, exc: BaseException) -> None:
        """Called after an unhandled exception in a `tell` handler, before `stopping()`."""

    # -- ending on purpose --------------------------------------------------------------------------------

    def exit(self, reason: ExitReason) -> None:
        """End this actor with `reason` (e.g. the agent process exited with status 137) after this message.

        The first decision stands: once an actor is exiting, a later `exit()` (say, the agent's death seen
        right after a Destroy that already ended it normally) does not change the reason.
        """
        if self._exiting:
            return
        self._exiting = True
        self._exit_reason = reason
        self.actor_ref.tell(pykka.messages._ActorStop())

    # -- pykka hooks (final) ------------------------------------------------------------------------------

    def on_start(self) -> None:
        try:
            self.started()
        except BaseException as exc:
            reason = ExitReason.from_exception(exc)
            try:
                self.stopping()
            finally:
                self.ctx.handle.fail_start(reason)
                self._report(reason)
            if not isinstance(exc, Exception):
                raise ActorExit(str(reason)) from exc
            raise
        self.ctx.handle.mark_started()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exc = exception_value or RuntimeError("unknown failure")
        reason = ExitReason.from_exception(exc)
        try:
            self.crashed(exc)
        finally:
            try:
                self.stopping()
            finally:
                self._report(reason)

    def on_stop(self) -> None:
        try:
            self.stopping()
        finally:
            if self.ctx.handle.shutdown_requested and not self._exit_reason.is_error:
                self._exit_reason = ExitReason.shutdown()
            self._report(self._exit_reason)

    def _handle_receive(self, message: Any) -> Any:
        # pykka stops *every* actor in the process on a BaseException; here it ends this actor only.
        if isinstance(message, InjectedCrash):  # only a chaos daemon sends it (protocols/chaos.py)
            raise InjectedFault(message.reason)
        try:
            return super()._handle_receive(message)
        except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
            raise ActorExit(f"{type(exc).__name__} raised inside {type(self).__name__}") from exc

    def _report(self, reason: ExitReason) -> None:
        if self._reported:
            return
        self._reported = True
        ctx = self.ctx
        if ctx.parent is not None:
            try:
                ctx.parent.tell(ChildExit(ctx.child_id, ctx.generation, reason))
            except pykka.ActorDeadError:
                pass  # the supervisor is gone already: it stopped us on its way out
        elif ctx.on_exit is not None:
            ctx.on_exit(reason)
