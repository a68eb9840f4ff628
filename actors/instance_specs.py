"""How an agent's InstanceSpec changes when the agent comes back, rather than starting its task afresh.

    spec, wt = recovered(spec, record, wt)   # after a daemon restart: its session, worktree, conversation
    spec = adopted(spec, session, cwd)       # an orphan tmux session made an instance
    spec = restarted(spec, conversation)     # a person restarts an ended instance

Each is a pure change of the spec's fields (the typed RuntimeSpec among them): the first start of the new
Instance continues the conversation (the harness's continue arguments; an sdk agent's stored conversation id)
and sends no first prompt, because the agent did its task's first turn already. The one exception: an sdk
agent that never got a conversation id never got going, so it is given its first prompt again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from actors.instance import InstanceSpec
from protocols.records import InstanceRecord

__all__ = ["adopted", "recovered", "restarted"]


def _continuing(spec: InstanceSpec, conversation: str, **changes: Any) -> InstanceSpec:
    """The spec whose first start continues: the restart argv (tmux, pty) or the conversation id (sdk), and
    no first prompt unless an sdk agent has no conversation to resume."""
    runtime = spec.runtime
    if spec.mode == "sdk":
        runtime = msgspec.structs.replace(runtime, sdk_session_id=conversation)
    else:
        runtime = msgspec.structs.replace(runtime, argv=spec.restart_argv or runtime.argv)
    if "name" in changes:
        changes["log_path"] = str(Path(runtime.log_path).with_name(f"{changes['name']}.log"))
    runtime = msgspec.structs.replace(runtime, **changes)
    resend = spec.mode == "sdk" and not conversation  # it never got going: start the task again
    return msgspec.structs.replace(
        spec,
        runtime=runtime,
        first_prompt=spec.first_prompt if resend else "",
        prompt_file_text=spec.prompt_file_text if resend else "",
    )


def recovered(spec: InstanceSpec, record: InstanceRecord, wt: Any) -> tuple[InstanceSpec, Any]:
    """The spec of a recorded instance brought back after a daemon restart: same session (a live tmux session
    is adopted whatever the argv), same worktree, same conversation. A paused one gets its recorded worktree
    back only when it is resumed."""
    from actors.git import Worktree

    if wt is None and record.worktree_mode not in ("", "none") and record.worktree_path:
        wt = Worktree(
            repo_root=str(Path(record.worktree_path).parents[1]),
            path=record.worktree_path,
            branch=record.branch,
            base_commit=record.base_commit,
            shared=record.worktree_mode == "shared",
        )
    cwd = wt.path if wt is not None else (record.worktree_path or spec.cwd)
    spec = _continuing(
        spec,
        record.sdk_session_id,
        name=record.session or spec.runtime.name,
        cwd=cwd,
        adopt_first=spec.mode == "tmux",
    )
    spec = msgspec.structs.replace(
        spec,
        cwd=cwd,
        worktree=wt,
        start_paused=record.status == "paused",
        notes=(*spec.notes, "brought back after a daemon restart"),
        comeback="the corral daemon restarted while your session was gone",
    )
    return spec, wt


def adopted(spec: InstanceSpec, session: str, cwd: str) -> InstanceSpec:
    """The spec of an instance made of the orphan tmux session `session`: its runtime adopts it."""
    runtime = msgspec.structs.replace(
        spec.runtime,
        name=session,
        cwd=cwd,
        adopt_first=True,
        log_path=str(Path(spec.runtime.log_path).with_name(f"{session}.log")),
    )
    return msgspec.structs.replace(
        spec, runtime=runtime, cwd=cwd, first_prompt="", prompt_file_text="", conversation_id=""
    )  # the orphan's conversation is its own, not the one a fresh launch would have had


def restarted(
    spec: InstanceSpec, conversation: str, *, reason: str = "restarted by request", adopt: bool = False
) -> InstanceSpec:
    """The spec of a fresh Instance for an agent that had one: an ended instance a person restarts, or (with
    `adopt`) an Instance actor that crashed while its agent lived on — a tmux agent's session is adopted.
    It continues the agent's conversation (`conversation`: the sdk conversation id it had) in the same
    session name and worktree."""
    record = spec.record
    if record is not None:
        record = msgspec.structs.replace(record, status="loading", reason=reason, restarts=0)
    spec = _continuing(spec, conversation, adopt_first=adopt and spec.mode == "tmux")
    return msgspec.structs.replace(spec, record=record, start_paused=False, notes=(), comeback=reason)
