"""How an Instance makes its runtime child: the runtime class that runs the agent, and what it needs besides
the RuntimeSpec.

    factory = RuntimeFactory(kind="tmux", tmux_server=server, backoff=BackoffSpec(min_s=0.5, max_s=30))
    child = factory.child(runtime_spec)        # the ChildSpec: id "runtime", transient, significant

An InstanceSpec holds a typed `RuntimeSpec` and a `RuntimeFactory` rather than a ready ChildSpec, so bringing
an agent back — a restart of an ended instance, a recovery after a daemon restart, an adoption of an orphan
session — is a change of the RuntimeSpec's fields (name, cwd, argv, conversation id), never surgery on a
ChildSpec's start function.

The runtime child is transient (an agent that exits 0 stays down) and significant: its end ends its Instance
(the Instance's `auto_shutdown` is `any_significant`), as OTP 24 does for a worker a supervisor exists for.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from actors.runtimes.base import RuntimeSpec
from actors.supervision import BackoffSpec, ChildSpec, Restart

__all__ = ["DEFAULT_BACKOFF", "RUNTIME", "RuntimeFactory", "RuntimeKind", "runtime_child"]

RUNTIME = "runtime"
"""The runtime's child id under its Instance."""

RuntimeKind = Literal["tmux", "pty", "sdk"]

DEFAULT_BACKOFF = BackoffSpec(min_s=0.5, max_s=30.0, jitter=0.2, reset_after_s=30.0)


def runtime_child(
    runtime_class: type, *args: Any, backoff: BackoffSpec | None = None, **kwargs: Any
) -> ChildSpec:
    """A runtime's child spec: transient, significant, with the instance's backoff."""
    return ChildSpec.worker(
        RUNTIME,
        runtime_class,
        *args,
        restart=Restart.TRANSIENT,
        backoff=backoff or DEFAULT_BACKOFF,
        significant=True,
        **kwargs,
    )


class RuntimeFactory(msgspec.Struct, frozen=True, kw_only=True):
    """Which runtime runs an agent and with what: the tmux server (tmux), the approval policy (sdk), the
    backoff between restarts, and any extra keyword arguments of the runtime class (`options`, for tests)."""

    kind: RuntimeKind
    tmux_server: Any = None  # actors.runtimes.tmux.TmuxServer; None: the runtime's default server
    backoff: BackoffSpec | None = None
    sdk_policy: Any = None  # an ApprovalPolicy; None: the runtime's default (ask a person)
    options: tuple[tuple[str, Any], ...] = ()

    def child(self, spec: RuntimeSpec, memo: Any = None) -> ChildSpec:
        """The runtime child that runs `spec`. `memo` (sdk): the SessionMemo every generation of one
        Instance's runtime shares, so a restart resumes the conversation the previous one started."""
        extra = dict(self.options)
        if self.kind == "sdk":
            from actors.runtimes.sdk import SdkRuntime, SessionMemo

            extra["memo"] = memo if memo is not None else SessionMemo(spec.sdk_session_id)
            if self.sdk_policy is not None:
                extra["policy"] = self.sdk_policy
            return runtime_child(SdkRuntime, spec, backoff=self.backoff, **extra)
        if self.kind == "pty":
            from actors.runtimes.pty import PtyRuntime

            return runtime_child(PtyRuntime, spec, backoff=self.backoff, **extra)
        from actors.runtimes.tmux import TmuxRuntime

        return runtime_child(TmuxRuntime, spec, self.tmux_server, backoff=self.backoff, **extra)
