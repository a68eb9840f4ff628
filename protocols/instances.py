"""An agent instance as the control API carries it: the request that starts one and the view of one.

    POST   /v1/repos/{project}/instances           StartInstance → InstanceView (201)
    GET    /v1/repos/{project}/instances           [InstanceView]
    DELETE /v1/repos/{project}/instances/{title}   → InstanceDeleted

The same Structs are what the Project is asked (`StartInstance`) and what the CLI decodes (`InstanceView`),
so the API, `corral instance … --json` and the UIs read one schema.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from protocols.errors import UsageError

__all__ = [
    "DETACH_KEYS",
    "FINISHED",
    "MODES",
    "WORKTREE_MODES",
    "BranchCheckout",
    "BranchPushed",
    "InstanceDeleted",
    "InstanceDiff",
    "InstanceView",
    "PullRequest",
    "PullRequestOpened",
    "PushRequest",
    "RenameRequest",
    "StartInstance",
    "WorktreeMode",
]

MODES = ("tmux", "pty", "sdk", "headless")
DETACH_KEYS = ("C-q", "C-Space")
"""The keys that detach a person attached to an agent (tmux names): bound to detach-client on corral's own
tmux server, so they work from `corral instance attach`, the dashboard and a plain `tmux -L corral attach`,
also inside the person's own tmux (which does not bind them, while its C-b d would detach the outer client).
The agents on that server never receive these two keys."""
WORKTREE_MODES = ("own", "branch", "shared", "none")
WorktreeMode = Literal["own", "branch", "shared", "none"]
FINISHED = frozenset({"exited", "failed"})
"""Statuses of an agent that ended (exited, killed by request, or failed past its restart intensity): a
restarted daemon does not bring it back; a person restarts it."""


class StartInstance(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start an agent called `title`: the body of `POST /v1/repos/{project}/instances`.

    `worktree` is own (a new branch `<branch_prefix><title>`; the default), branch (work on `branch`; the
    default when `branch` is given), shared (the task's worktree, needs `task`) or none (the repository).
    """

    title: str
    program: str = ""  # "" → the config's default_program
    mode: str = "tmux"
    prompt: str = ""
    task: str = ""
    agent_type: str = ""
    branch: str = ""
    worktree: str = ""
    model: str = ""  # "" → the harness's default
    flags: tuple[str, ...] = ()  # extra arguments for the program
    skip_permissions: bool = False
    wave: int | None = None  # a wave task's agent: its wave (CORRAL_WAVE) and the tasks in it (CORRAL_PEERS)
    peers: int = 0
    attempt_key: str = ""  # a wave task's agent: which attempt of it this is (actors/waves.py)

    def worktree_mode(self) -> WorktreeMode:
        """Where the agent works, checked: `worktree`, else branch (with a branch) or own."""
        mode = self.worktree or ("branch" if self.branch else "own")
        if mode not in WORKTREE_MODES:
            raise UsageError(f"worktree must be one of {', '.join(WORKTREE_MODES)}, got {mode!r}")
        if mode == "branch" and not self.branch:
            raise UsageError('worktree "branch" needs the branch to work on')
        if mode == "shared" and not self.task:
            raise UsageError('worktree "shared" needs the task whose worktree to share')
        return mode  # type: ignore[return-value]


class InstanceView(msgspec.Struct, frozen=True, kw_only=True):
    """One instance as the API shows it: the Project's entry and the Instance's live info, together."""

    project: str
    title: str
    status: str
    reason: str
    status_age_s: float | None
    mode: str
    program: str
    branch: str
    worktree: str
    task: str
    agent_type: str
    restarts: int
    resource_profile: str
    session: str
    created_at: float
    attach: Any = None
    metrics: Any = None
    notes: tuple[str, ...] = ()
    conversation_id: str = ""


class InstanceDeleted(msgspec.Struct, frozen=True, kw_only=True):
    """What `DELETE /v1/repos/{project}/instances/{title}` removed (or, with `dry_run`, would remove): the
    instance's row always; its worktree and branch unless `kept` says why not; and, with force, the work
    that went with them (`discarded`, one sentence per kind)."""

    project: str
    title: str
    status: str  # the ended instance's last status: exited or failed
    worktree: str  # the worktree removed ("" none)
    branch: str  # the branch deleted ("" none)
    kept: tuple[str, ...] = ()  # what stays, and why (a task's shared worktree, a branch corral did not make)
    discarded: tuple[str, ...] = ()  # with force: the commits and uncommitted changes that were lost
    dry_run: bool = False


class InstanceDiff(msgspec.Struct, frozen=True, kw_only=True):
    """`GET …/instances/{title}/diff`: what the instance changed since `base` (the commit its branch started
    from; "HEAD" when it has none), committed or not, untracked files as new ones. `stat` is git's --stat
    of it; `diff` the patch without colours, cut at a line end after `limit_bytes` (`truncated` says so)."""

    project: str
    title: str
    base: str
    branch: str
    worktree: str  # where it was read ("" for a paused instance: its branch's commits)
    stat: str
    diff: str
    truncated: bool = False
    limit_bytes: int = 0


class PushRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST …/instances/{title}/push` (optional)."""

    remote: str = "origin"


class BranchPushed(msgspec.Struct, frozen=True, kw_only=True):
    """What a push did: `commit` (the branch's head) is on `remote` as `branch`, with its upstream set.
    Uncommitted work is not pushed: `uncommitted` says there is some (commit it, or pause, which does)."""

    project: str
    title: str
    branch: str
    remote: str
    commit: str
    uncommitted: bool = False


class PullRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST …/instances/{title}/pr` (optional): "" title and body come from the task (its title
    and brief) or, for a standalone instance, from its title and prompt; `base` "" is the remote's default."""

    title: str = ""
    body: str = ""
    base: str = ""
    remote: str = "origin"
    draft: bool = False


class PullRequestOpened(msgspec.Struct, frozen=True, kw_only=True):
    project: str
    title: str
    branch: str
    commit: str  # the head pushed first
    url: str  # the pull request, as gh printed it
    pr_title: str


class BranchCheckout(msgspec.Struct, frozen=True, kw_only=True):
    """`POST …/instances/{title}/checkout`: the instance is paused (its work committed on its branch) and
    `commands` are what a person runs, in order, to have the branch in front of them."""

    project: str
    title: str
    branch: str
    paused: bool  # this request paused it (False: it was paused or had ended already)
    commands: tuple[str, ...]
    resume: str  # the command that gives the branch back to the agent afterwards


class RenameRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST …/instances/{title}/rename`: the instance's new title."""

    title: str
