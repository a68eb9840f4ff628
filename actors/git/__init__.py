"""git for corral: the worktree each instance works in, its branch, and the one way corral runs git.

    from actors.git import create_worktree, pause_worktree, resume_worktree, diff_stats

    wt = create_worktree(root, "Fix login", prefix=config.branch_prefix)
    …
    paused = pause_worktree(wt, "Fix login")  # commits uncommitted work, removes the tree, keeps the branch
    wt = resume_worktree(root, wt.branch, wt.path, base_commit=wt.base_commit)

Modules, one idea each: `runner` (run git: argv, timeout, GitError), `names` (branch and directory names,
pure), `records` (the Structs), `listing` (`git worktree list`), `diffstat` (DiffStats), `worktrees` (create,
share, pause, resume, remove, push), `discard` (what deleting a branch would lose; deleting it). Everything
here is synchronous and imports no pykka: an actor calls it from its own thread, a CLI command directly. User
documentation: docs/worktrees.md.
"""

from actors.git.diffstat import diff_stats
from actors.git.discard import AtRisk, created_by_corral, delete_branch, work_at_risk
from actors.git.listing import list_worktrees
from actors.git.names import branch_for, check_branch_name, is_valid_branch_name, slug
from actors.git.records import DiffStats, PauseResult, Worktree, WorktreeEntry
from actors.git.runner import (
    GIT_TIMEOUT_S,
    SLOW_GIT_TIMEOUT_S,
    BranchNameError,
    GitError,
    NoRemoteError,
    WorktreeConflict,
    run_git,
)
from actors.git.worktrees import (
    PAUSE_MESSAGE,
    WORKTREES_DIR,
    create_worktree,
    ensure_excluded,
    pause_worktree,
    push_branch,
    remove_worktree,
    resume_worktree,
    shared_worktree,
    worktree_path,
)

__all__ = [
    "GIT_TIMEOUT_S",
    "PAUSE_MESSAGE",
    "SLOW_GIT_TIMEOUT_S",
    "WORKTREES_DIR",
    "AtRisk",
    "BranchNameError",
    "DiffStats",
    "GitError",
    "NoRemoteError",
    "PauseResult",
    "Worktree",
    "WorktreeConflict",
    "WorktreeEntry",
    "branch_for",
    "check_branch_name",
    "create_worktree",
    "created_by_corral",
    "delete_branch",
    "diff_stats",
    "ensure_excluded",
    "is_valid_branch_name",
    "list_worktrees",
    "pause_worktree",
    "push_branch",
    "remove_worktree",
    "resume_worktree",
    "run_git",
    "shared_worktree",
    "slug",
    "work_at_risk",
    "worktree_path",
]
