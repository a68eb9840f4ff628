"""Turning "run this agent for that task" into an InstanceSpec: the one place the pieces meet.

    request ──► harness (config's [harnesses], built-ins, custom)
            ──► worktree (its own branch, a given branch, the task's shared one, or none)
            ──► launch plan (argv, how the first prompt gets in, sdk fallback notes)
            ──► resource controls (nice/ionice wrapper, build hints, CORRAL_* environment)
            ──► permission policy (its role's `permissions` and `allow`: how auto-yes answers)
            ──► RuntimeSpec + the runtime's child spec (tmux | pty | sdk) ──► InstanceSpec

Only decisions and cheap I/O happen here (git worktree, a lookup on PATH); starting is the Instance's job.
Every note (a fallback from sdk to tmux, a missing wrapper) is returned for the audit log.

A program that takes a conversation id at launch (claude's `--session-id`) gets one corral chose, so its
instance shows the agent's conversation id from the start, in tmux and pty as in sdk (where the transport
reports it). codex's TUI takes none, and its thread id is not on its screen: its tmux agents show none.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

import msgspec

from actors.git import Worktree, create_worktree, shared_worktree
from actors.instance import InstanceSpec
from actors.resources import ResourceControls
from actors.runtimes.base import RuntimeSpec
from actors.runtimes.factory import RuntimeFactory
from actors.runtimes.tmux_server import session_name
from actors.supervision import BackoffSpec, SupervisorFlags
from protocols.config import Config
from protocols.harness import Harness, plan_launch
from protocols.sdk import Approval
from protocols.stages import AGENT_KINDS
from protocols.status import PermissionPolicy

__all__ = ["AgentRequest", "Prepared", "agent_role", "approve_by_policy", "prepare_instance"]

WorktreeMode = Literal["own", "branch", "shared", "none"]


class AgentRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a caller (the daemon, a task, `corral instance start`) asks for."""

    project: str
    repo_root: str
    title: str
    program: str = ""  # "" → the config's default_program
    mode: str = "tmux"  # tmux | pty | sdk ("headless" = sdk)
    prompt: str = ""
    model: str = ""
    flags: tuple[str, ...] = ()
    skip_permissions: bool = False
    auto_yes: bool = False
    worktree: WorktreeMode = "own"
    branch: str = ""  # worktree="branch": work on this branch
    task: str = ""  # worktree="shared": the task whose worktree to share
    agent_type: str = ""
    wave: int | None = None
    peers: int = 0
    env: tuple[tuple[str, str], ...] = ()


class Prepared(msgspec.Struct, frozen=True):
    spec: InstanceSpec
    worktree: Worktree | None
    notes: tuple[str, ...]


def prepare_instance(
    request: AgentRequest,
    config: Config,
    controls: ResourceControls,
    *,
    tmux_server: Any = None,
    flags: SupervisorFlags | None = None,
    backoff: BackoffSpec | None = None,
    base_env: dict[str, str] | None = None,
    sdk_policy: Any = None,
) -> Prepared:
    """Decide everything about one agent and make its worktree; the returned spec starts it."""
    program = request.program or config.default_program
    permissions = config.permission_policy(agent_role(request.agent_type, request.task, config))
    if sdk_policy is None and request.auto_yes:
        sdk_policy = functools.partial(approve_by_policy, permissions)
    harness = config.harness_for(program)
    name = session_name(request.project, request.title)
    conversation = _new_conversation(harness, program, request.flags)
    plan = plan_launch(
        harness,
        program=program,
        model=request.model,
        flags=request.flags,
        skip_permissions=request.skip_permissions,
        prompt=request.prompt,
        prompt_file=_prompt_file(name, request.prompt, harness.long_prompt_chars),
        mode=request.mode,
        session=conversation,  # ignored in sdk mode, where the transport reports the id
    )
    base = dict(os.environ if base_env is None else base_env)
    extra = {
        "CORRAL_MANAGED": "1",
        "CORRAL_PROJECT": request.project,
        "CORRAL_INSTANCE_TITLE": request.title,
        "CORRAL_TASK": request.task,
        "CORRAL_AGENT_TYPE": request.agent_type,
        "CORRAL_WAVE": "" if request.wave is None else str(request.wave),
        "CORRAL_PEERS": str(request.peers),
        **dict(request.env),
    }
    launch = controls.launch(plan.argv, base, extra)
    _check_program(plan.argv[0], dict(launch.env).get("PATH", os.defpath))  # before a worktree is made
    worktree = _worktree(request, config)
    cwd = worktree.path if worktree is not None else request.repo_root
    changed = tuple((k, v) for k, v in launch.env if base.get(k) != v)  # the server/daemon env holds the rest
    runtime_spec = RuntimeSpec(
        name=name,
        argv=launch.argv,
        cwd=str(cwd),
        env=changed,
        log_path=str(Path(request.repo_root) / ".corral" / "logs" / f"{name}.log"),
        settle_s=plan.enter_settle_s,
        sdk_transport=plan.sdk_transport,
    )
    factory = RuntimeFactory(kind=plan.mode, tmux_server=tmux_server, backoff=backoff, sdk_policy=sdk_policy)
    restart_argv: tuple[str, ...] = ()
    if plan.mode != "sdk" and (harness.continue_args or harness.resume_args):
        # A restarted (or resumed) agent continues its conversation instead of starting the task over.
        again = plan_launch(
            harness,
            program=program,
            model=request.model,
            flags=request.flags,
            skip_permissions=request.skip_permissions,
            mode=plan.mode,
            resume=True,
        )
        restart_argv = tuple(controls.launch(again.argv, base, extra).argv)
    notes = tuple(n for n in (plan.note, *launch.notes) if n)
    spec = InstanceSpec(
        notes=notes,
        project=request.project,
        title=request.title,
        harness=harness,
        mode=plan.mode,
        runtime=runtime_spec,
        factory=factory,
        restart_argv=restart_argv,
        conversation_id=conversation if plan.mode != "sdk" else "",
        first_prompt=plan.send,
        task_prompt=(plan.send or request.prompt) if request.task else "",
        prompt_file=plan.prompt_file,
        prompt_file_text=request.prompt if plan.prompt_file else "",
        cwd=str(cwd),
        auto_yes=request.auto_yes,
        permissions=permissions,
        flags=flags or SupervisorFlags(max_restarts=3, period_s=60.0),
        resource_profile=launch.resource_profile,
        task=request.task,
        agent_type=request.agent_type,
        worktree=worktree,
    )
    return Prepared(spec, worktree, notes)


_CONVERSATION_FLAGS = frozenset({"--session-id", "--resume", "-r", "--continue", "-c"})


def _new_conversation(harness: Harness, program: str, flags: tuple[str, ...]) -> str:
    """A fresh conversation id for a program that takes one at launch; "" when it takes none, or when the
    profile's program or flags already choose the conversation (they win)."""
    if not harness.session_id_args:
        return ""
    try:
        words = [*shlex.split(program), *flags]
    except ValueError:
        words = [*program.split(), *flags]
    if any(word.split("=", 1)[0] in _CONVERSATION_FLAGS for word in words):
        return ""
    return str(uuid.uuid4())


def agent_role(agent_type: str, task: str, config: Config) -> str:
    """The `[agents.<role>]` an agent plays: for a task's agent, the role `[phases]` maps its step to (a
    readiness agent plays `phases.readiness_review`, "master" by default); otherwise its agent type itself
    (`corral instance start --agent-type coder`); "" for none."""
    kind = AGENT_KINDS.get(agent_type) if task else None
    return getattr(config.phases, kind.phase) if kind is not None else agent_type


def approve_by_policy(policy: PermissionPolicy, approval: Approval) -> bool | None:
    """An sdk agent's approval request, answered as auto-yes answers a permission prompt on a screen: True
    allow, False refuse, None leave it to a person (the instance shows waiting)."""
    return {"allow": True, "deny": False}.get(policy.verdict(approval.summary))


def _check_program(program: str, path: str) -> None:
    """Refuse a start whose agent program cannot run, before a worktree is made or anything launched. The
    runtimes check `argv[0]` too, but behind a resource profile's wrapper (`ionice … nice -n 10 PROGRAM`)
    that is `ionice`: the start said "loading" and the agent exited 127 a moment later. A relative path
    (`./bin/agent`) is left to the runtime, which knows the worktree it is relative to."""
    if os.path.isabs(program):
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise ValueError(f"{program} is not an executable file")
    elif "/" not in program and shutil.which(program, path=path) is None:
        raise ValueError(f"command {program!r} not found on PATH")


def _worktree(request: AgentRequest, config: Config) -> Worktree | None:
    if request.worktree == "none":
        return None
    if request.worktree == "shared":
        if not request.task:
            raise ValueError(f"instance {request.title}: a shared worktree needs its task")
        return shared_worktree(request.repo_root, request.task, prefix=config.branch_prefix)
    branch = request.branch if request.worktree == "branch" else ""
    return create_worktree(
        request.repo_root, request.title, prefix=config.branch_prefix, branch=branch or None
    )


def _prompt_file(name: str, prompt: str, threshold: int) -> str:
    """Where a long first prompt is written (relative to the agent's cwd); "" when it goes inline."""
    return f".corral/prompts/{name}.md" if threshold and len(prompt) > threshold else ""
