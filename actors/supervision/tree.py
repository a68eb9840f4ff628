"""Starting and stopping a whole supervision tree: what the daemon (and a test) holds on to.

    tree = SupervisionTree.start(SupervisorFlags(max_restarts=3, period_s=5),
                                 [ChildSpec.worker("bus", EventBus), ...])
    with tree.env.hub.subscribe() as events: ...
    tree.stop()          # children stop in reverse start order, each within its shutdown time

The root has no parent: when it ends by itself (its intensity was exceeded: reason `shutdown` with the cause;
or it crashed) `exited` is set, `exit_reason` says why and `failed` is true; the daemon turns that into its
exit status. After `stop()` the root ends with a plain `shutdown` and `failed` stays false.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pykka

from actors.clock import Clock
from actors.supervision.context import ChildContext, SupervisionEnv
from actors.supervision.messages import GetStatistics, StartChild, SupervisorStats, TerminateChild
from actors.supervision.spec import ChildSpec, SupervisorFlags
from actors.supervision.supervisor import Supervisor
from protocols.errors import SupervisionError
from protocols.messages import ExitReason

__all__ = ["SupervisionTree"]


class SupervisionTree:
    """A root supervisor, its environment, and a way to learn that it ended."""

    def __init__(self, env: SupervisionEnv, root_id: str = "root") -> None:
        self.env = env
        self.root_id = root_id
        self.exited = threading.Event()
        self.exit_reason: ExitReason | None = None
        self.ref: pykka.ActorRef[Any] | None = None
        self._ctx: ChildContext | None = None

    @classmethod
    def start(
        cls,
        flags: SupervisorFlags,
        children: Sequence[ChildSpec] = (),
        *,
        env: SupervisionEnv | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        root_id: str = "root",
        start_timeout_s: float = 60.0,
    ) -> SupervisionTree:
        tree = cls(env or SupervisionEnv.create(clock, seed=seed), root_id)
        ctx = ChildContext.root(tree.env, root_id, on_exit=tree._on_exit)
        ref = Supervisor.start(ctx, flags, tuple(children))
        if not ctx.handle.wait_started(start_timeout_s):
            ref.stop(block=False)
            raise SupervisionError(f"{root_id} did not start within {start_timeout_s:g} s")
        if ctx.handle.start_error is not None:
            tree.env.close()
            raise SupervisionError(f"{root_id} failed to start: {ctx.handle.start_error}")
        tree.ref, tree._ctx = ref, ctx
        tree.env.directory.register(root_id, ref)
        return tree

    def _on_exit(self, reason: ExitReason) -> None:
        self.exit_reason = reason
        self.exited.set()

    @property
    def failed(self) -> bool:
        """The root ended without being asked to (`stop()`): it gave up or crashed."""
        requested = self._ctx is not None and self._ctx.handle.shutdown_requested
        return self.exited.is_set() and not requested

    def ask(self, message: Any, *, path: str | None = None, timeout: float = 10.0) -> Any:
        """Ask the supervisor (or actor) at `path`, the root by default."""
        ref = self.env.directory.get(path or self.root_id)
        if ref is None:
            raise SupervisionError(f"nothing is running at {path or self.root_id}")
        return ref.ask(message, timeout=timeout)

    def start_child(self, spec: ChildSpec, *, path: str | None = None, timeout: float = 30.0) -> Any:
        return self.ask(StartChild(spec), path=path, timeout=timeout)

    def terminate_child(self, child_id: str, *, path: str | None = None, timeout: float = 30.0) -> None:
        self.ask(TerminateChild(child_id), path=path, timeout=timeout)

    def statistics(self, path: str | None = None) -> SupervisorStats:
        return self.ask(GetStatistics(), path=path)

    def stop(self, timeout: float | None = 60.0) -> None:
        """Orderly shutdown: the root stops its children in reverse start order, then the timers stop."""
        if self.ref is not None and self._ctx is not None:
            self._ctx.handle.shutdown_requested = True
            try:
                self.ref.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                pass
        self.env.close()
