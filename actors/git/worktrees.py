"""Worktrees: one per instance under `<repo>/.worktrees/<slug>`, made, paused, resumed and removed with git.

    wt = create_worktree(root, "Fix login", prefix="corral/")  # new branch corral/fix-login from HEAD
    diff_stats(wt)                               # DiffStats(files_changed=3, …)
    pause_worktree(wt, "Fix login")              # commit if dirty, remove the tree, keep the branch
    wt = resume_worktree(root, wt.branch, wt.path, base_commit=wt.base_commit)
    push_branch(wt)                              # git push --set-upstream origin corral/fix-login

Every operation is safe to repeat. The daemon performs its side effects again after a crash, so creating a
worktree that already exists for its branch returns it, pausing a paused one does nothing, and so on; what
cannot be repeated safely is refused with a `WorktreeConflict` that says where the branch is checked out or
what holds the path. Nothing here ever deletes a branch, and only `pause_worktree` stages everything.

Operations that change the worktree list (create, resume, pause, remove) hold an exclusive `flock` on
`<git-common-dir>/corral-worktrees.lock`, so two corral processes (or two actors of one daemon) asking for the
same worktree at once run one after the other: the second finds the first's worktree and returns it, instead
of racing it through `git worktree add` (which would fail half-way, or check the branch out twice under
different paths). git's own locks still guard against everything that is not corral; if `git worktree add`
fails because someone else made the same worktree meanwhile, that worktree is returned too.

The commit a new branch starts from is recorded in the repository's config as `branch.<name>.corral-base`
(as `gh` records `gh-merge-base`), so a crash between making the worktree and storing its record loses
nothing, and git drops the entry with the branch. Without a record (a branch corral did not create), the base
is the merge base of the branch and `base`.

Starting an agent waits for `create_worktree`, so the common case (a new branch, nothing at its path) costs
one `git show-ref` (which answers "is this name a local or remote branch?" and "what is HEAD?" at once) and
one `git worktree add`, with the `git config` that records the base running alongside it; the git common
dir is asked once per repository. Every other case, and any refusal by git, goes through the full check of
every worktree, which is what makes the guarantees above.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from stat import S_ISDIR

import msgspec

from actors.git.listing import list_worktrees
from actors.git.names import branch_for, check_branch_name, slug
from actors.git.records import PauseResult, Worktree, WorktreeEntry
from actors.git.runner import (
    SLOW_GIT_TIMEOUT_S,
    GitError,
    NoRemoteError,
    WorktreeConflict,
    git_answer,
    git_succeeds,
    run_git,
    start_git,
)

__all__ = [
    "BASE_CONFIG_KEY",
    "PAUSE_MESSAGE",
    "WORKTREES_DIR",
    "create_worktree",
    "ensure_excluded",
    "pause_worktree",
    "push_branch",
    "remove_worktree",
    "resume_worktree",
    "shared_worktree",
    "worktree_path",
]

WORKTREES_DIR = ".worktrees"
"""The directory, at the root of the main work tree, that holds corral's worktrees."""

PAUSE_MESSAGE = "[corral] paused {title}"
"""The message of the commit `pause_worktree` makes of a dirty worktree."""

BASE_CONFIG_KEY = "corral-base"
"""`branch.<name>.<this>` holds the commit corral created the branch from."""

_EXCLUDE_LINE = f"/{WORKTREES_DIR}/"
_EXCLUDE_FORMS = frozenset({f"{WORKTREES_DIR}/", f"/{WORKTREES_DIR}/", f"/{WORKTREES_DIR}", WORKTREES_DIR})
_LOCK_FILE = "corral-worktrees.lock"
# Files whose presence in a worktree's git dir means an operation is half done (see git-status(1)).
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or `git am`",
    "BISECT_LOG": "a bisect",
}
# root → (what root/.git is, the git common dir git gave for it): a root stays in its repository until that
# `.git` is replaced.
_common_dirs: dict[Path, tuple[tuple[int, int] | bytes, Path]] = {}
# Who commits a pause when the user has no identity configured (git would refuse to commit).
_FALLBACK_IDENTITY = ("-c", "user.name=corral", "-c", "user.email=corral@localhost")


def worktree_path(repo_root: str | os.PathLike[str], branch: str) -> Path:
    """Where the worktree of `branch` lives: `<repo_root>/.worktrees/<slug(branch)>`."""
    return Path(repo_root).resolve() / WORKTREES_DIR / slug(branch)


def create_worktree(
    repo_root: str | os.PathLike[str],
    title: str,
    *,
    prefix: str = "corral/",
    branch: str | None = None,
    base: str = "HEAD",
) -> Worktree:
    """The worktree of an instance called `title`, made if it does not exist yet.

    Without `branch`, the branch is `branch_for(title, prefix)`; a missing branch is created from `base`
    (a commit-ish, resolved in the main work tree). An existing local branch is checked out as it is; a
    branch that only exists on one remote (`origin/<branch>`) is created to track it. The path is
    `worktree_path(repo_root, branch)`, and `.worktrees/` is added to `.git/info/exclude`.

    Idempotent: when the branch is already checked out at that path, that worktree is returned. Raises
    WorktreeConflict when the branch is checked out anywhere else (the main work tree included) or the path
    holds something else, BranchNameError for an invalid `branch`, GitError when git fails (bad `base`, …).
    """
    root = Path(repo_root).resolve()
    name = check_branch_name(branch) if branch is not None else branch_for(title, prefix)
    path = root / WORKTREES_DIR / slug(name)
    with _repo_lock(root) as common_dir:
        ensure_excluded(root, common_dir=common_dir)
        made = _add_new_branch(root, name, path, base)
        if made is not None:
            return made
        if _existing(root, name, path):
            return _describe(root, path, name, base)
        return _add(root, name, path, base)


def shared_worktree(repo_root: str | os.PathLike[str], task_name: str, prefix: str = "corral/") -> Worktree:
    """The worktree the instances of task `task_name` share (branch `<prefix><task_name>`), made on first use
    and returned as it is afterwards."""
    wt = create_worktree(repo_root, task_name, prefix=prefix)
    return msgspec.structs.replace(wt, shared=True)


def resume_worktree(
    repo_root: str | os.PathLike[str],
    branch: str,
    path: str | os.PathLike[str],
    *,
    base_commit: str | None = None,
    shared: bool = False,
) -> Worktree:
    """Put the paused `branch` back at `path` (where it was), and return its worktree.

    `base_commit` is the one the worktree had; without it the recorded or merge base is used. Idempotent
    when the branch is already there. Raises WorktreeConflict when the branch is checked out elsewhere
    (naming where) or `path` holds anything but an empty directory, GitError when the branch is gone.
    """
    root = Path(repo_root).resolve()
    check_branch_name(branch)
    target = Path(path).absolute()
    with _repo_lock(root) as common_dir:
        ensure_excluded(root, common_dir=common_dir)
        if not _existing(root, branch, target):
            if not _ref_exists(root, f"refs/heads/{branch}"):
                raise GitError(f"cannot resume: branch {branch!r} no longer exists in {root}")
            _worktree_add(root, branch, target, ("worktree", "add", str(target), branch))
        wt = _describe(root, target, branch, "HEAD", base_commit=base_commit)
    return msgspec.structs.replace(wt, shared=shared)


def pause_worktree(wt: Worktree, title: str) -> PauseResult:
    """Pause: commit any uncommitted work as `[corral] paused <title>`, remove the worktree, keep the branch.

    Uncommitted work is everything `git status` shows, untracked files included but not ignored ones
    (`git add -A`; pre-commit hooks are skipped, a snapshot is not a commit for review). Ignored files
    (build output, a copied `.env`) are deleted with the worktree. Stop the agent first: a file written
    during the pause may be neither committed nor kept.

    Idempotent: a worktree already gone is only unregistered. Refuses (WorktreeConflict, before changing
    anything) a worktree that is locked, not on `wt.branch` (detached, or mid-rebase) or in the middle of a
    merge, cherry-pick, revert or bisect; and, after the commit, one that still is not clean (changes inside
    a submodule), leaving the worktree and the commit in place.
    """
    root, path = Path(wt.repo_root), Path(wt.path)
    with _repo_lock(root):
        entry = _entry_at(root, path)
        if entry is None or not path.exists():
            _forget_missing(root, entry, "pause")
            return PauseResult(branch=wt.branch, path=wt.path)
        _refuse_unsafe(entry, wt.branch, "pause")
        commit = None
        if _dirty(path):
            commit = _commit_everything(path, title)
            if _dirty(path):
                kept = f" (the rest was committed as {commit[:12]})" if commit else ""
                raise WorktreeConflict(
                    f"cannot pause {path}: changes remain that `git add -A` cannot commit (inside a "
                    f"submodule?); commit or discard them there, then pause again{kept}"
                )
        try:
            run_git(root, "worktree", "remove", str(path), timeout=SLOW_GIT_TIMEOUT_S)
        except GitError:
            # git removes a clean tree with submodules only by force; a tree that changed since it was
            # committed is no longer clean, and is not forced.
            if _dirty(path):
                raise WorktreeConflict(
                    f"cannot pause {path}: files changed while it was being paused (is the agent stopped?); "
                    "pause again"
                ) from None
            run_git(root, "worktree", "remove", "--force", str(path), timeout=SLOW_GIT_TIMEOUT_S)
        run_git(root, "worktree", "prune")
    return PauseResult(branch=wt.branch, path=wt.path, commit=commit, removed=True)


def remove_worktree(wt: Worktree, *, force: bool = False) -> bool:
    """Remove the worktree (an explicit clean-up; killing an instance keeps both worktree and branch).

    The branch is kept. Refuses a worktree with uncommitted changes unless `force` (which discards them),
    and a locked one always (unlock it with `git worktree unlock`). Returns False when it was already gone.
    """
    root, path = Path(wt.repo_root), Path(wt.path)
    with _repo_lock(root):
        entry = _entry_at(root, path)
        if entry is None or not path.exists():
            _forget_missing(root, entry, "remove")
            return False
        if entry.locked:
            raise WorktreeConflict(_locked_message(entry, "remove"))
        if not force and _dirty(path):
            raise WorktreeConflict(
                f"worktree {path} has uncommitted changes; commit them (or pause, which commits them), "
                "or remove it with force to discard them"
            )
        args = ("worktree", "remove", *(("--force",) if force else ()), str(path))
        run_git(root, *args, timeout=SLOW_GIT_TIMEOUT_S)
        run_git(root, "worktree", "prune")
    return True


def push_branch(wt: Worktree, remote: str = "origin") -> str:
    """`git push --set-upstream <remote> <branch>`; returns the commit pushed.

    Pushes commits only: uncommitted work in the worktree stays where it is. Works on a paused worktree
    too. Raises NoRemoteError when the repository has no such remote, GitError when the push fails
    (rejected, no credentials: git never prompts for them here).
    """
    root = Path(wt.repo_root)
    remotes = run_git(root, "remote").split()
    if remote not in remotes:
        known = ", ".join(remotes) if remotes else "none"
        raise NoRemoteError(
            f"cannot push {wt.branch}: {root} has no remote {remote!r} (remotes: {known}); "
            f"add one with `git remote add {remote} <url>`"
        )
    ref = f"refs/heads/{wt.branch}"
    if not _ref_exists(root, ref):
        raise GitError(f"cannot push: branch {wt.branch!r} does not exist in {root}")
    head = _resolve(root, ref)
    run_git(root, "push", "--set-upstream", "--quiet", remote, f"{ref}:{ref}", timeout=SLOW_GIT_TIMEOUT_S)
    return head


def ensure_excluded(repo_root: str | os.PathLike[str], *, common_dir: Path | None = None) -> bool:
    """Make git ignore `.worktrees/` through `<git-common-dir>/info/exclude` (never the user's tracked
    `.gitignore`); returns whether the line was added. Safe against concurrent callers: the file is locked."""
    common = common_dir if common_dir is not None else _common_dir(Path(repo_root))
    exclude = common / "info" / "exclude"
    try:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with open(exclude, "a+", encoding="utf-8", errors="surrogateescape") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read()
            if any(line.strip() in _EXCLUDE_FORMS for line in text.splitlines()):
                return False
            sep = "" if not text or text.endswith("\n") else "\n"
            f.write(f"{sep}# corral: agent worktrees\n{_EXCLUDE_LINE}\n")
    except OSError as exc:
        raise GitError(f"cannot add {_EXCLUDE_LINE} to {exclude}: {exc.strerror or exc}") from None
    return True


# ----------------------------------------------------------------------------------------------- internals


@contextmanager
def _repo_lock(root: Path) -> Iterator[Path]:
    """Hold the repository's corral worktree lock; yields the git common dir. Released on exit or death."""
    common = _common_dir(root)
    try:
        fd = os.open(common / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise GitError(f"cannot open {common / _LOCK_FILE}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield common
    finally:
        os.close(fd)


def _common_dir(root: Path) -> Path:
    """`git rev-parse --git-common-dir` of `root`, asked again only when `root/.git` changes."""
    dot_git = root / ".git"
    seen: tuple[int, int] | bytes | None
    try:
        st = dot_git.stat()
        # a directory by its inode; a linked worktree's gitfile by its text, "gitdir: <its admin dir>"
        seen = (st.st_dev, st.st_ino) if S_ISDIR(st.st_mode) else dot_git.read_bytes()
    except OSError:  # a subdirectory of a work tree, or no repository: git knows
        seen = None
    cached = _common_dirs.get(root)
    if cached is not None and cached[0] == seen:
        return cached[1]
    common = (root / run_git(root, "rev-parse", "--git-common-dir").strip()).resolve()
    if seen is not None:
        _common_dirs[root] = (seen, common)
    return common


def _same(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _entry_at(root: Path, path: Path) -> WorktreeEntry | None:
    return next((e for e in list_worktrees(root) if _same(e.path, path)), None)


def _existing(root: Path, branch: str, path: Path) -> bool:
    """True when `branch` is already checked out at `path` (the idempotent case), False when nothing is in
    the way; raises WorktreeConflict when the branch is elsewhere or the path is taken."""
    entries = list_worktrees(root)
    stale = [e for e in entries if not e.main and (e.branch == branch or _same(e.path, path))]
    stale = [e for e in stale if e.prunable or not Path(e.path).exists()]
    if stale:  # a directory deleted by hand still holds its branch and its path: let both go
        for e in stale:
            _forget_missing(root, e, "reuse")
        entries = list_worktrees(root)
    for e in entries:
        if e.branch == branch:
            if _same(e.path, path):
                return True
            where = f"the main work tree {e.path}" if e.main else e.path
            raise WorktreeConflict(
                f"branch {branch!r} is already checked out in {where}; a branch can be in one worktree "
                f"only: switch that one to another branch, or pause or remove it first"
            )
    at_path = next((e for e in entries if _same(e.path, path)), None)
    if at_path is not None:
        holds = f"branch {at_path.branch!r}" if at_path.branch else "a detached HEAD"
        raise WorktreeConflict(f"{path} is already the worktree of {holds}, not of {branch!r}")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise WorktreeConflict(f"{path} already exists and is not the worktree of {branch!r}; move it away")
    return False


def _add_new_branch(root: Path, branch: str, path: Path, base: str) -> Worktree | None:
    """The common case, a branch nobody has yet, in one look-up and one `git worktree add` (the full path
    reads every worktree, and asks for the branch, the remotes and the base one by one).

    Taken only when nothing is at `path` and no ref is named `branch`, locally or on a remote: then what
    can still be in the way is a stale registration of the path, or a branch or directory made since the
    look-up, and `git worktree add` refuses all three. None when the case is not that one or git refused:
    the full path (`_existing`, `_add`) then decides, prunes and retries, or says what is wrong.

    The base is recorded while the worktree is made (two git commands at once), so it is there as soon as
    the worktree is. `git worktree add -b` creates the branch before it looks at the path; when it fails
    and the branch is at `base_commit`, the branch is this call's (the lock keeps other corral calls out)
    and keeps its record, for the full path to check it out; otherwise the record is taken back.
    """
    if os.path.lexists(path):
        return None
    refs = git_answer(root, "show-ref", "--head", "--", branch)  # HEAD and every ref ending in /<branch>
    if refs is None:  # no HEAD and nothing else: the full path says what is wrong
        return None
    head = None
    for line in refs.splitlines():
        commit, _, ref = line.partition(" ")
        if ref == "HEAD":
            head = commit
        elif ref == f"refs/heads/{branch}" or (
            ref.startswith("refs/remotes/") and ref.endswith(f"/{branch}")
        ):
            return None
    base_commit = head if base == "HEAD" and head else _resolve(root, base)
    key = f"branch.{branch}.{BASE_CONFIG_KEY}"
    add = ("worktree", "add", "--quiet", "--no-track", "-b", branch, str(path), base_commit)
    with start_git(root, "config", key, base_commit) as record:
        added = git_succeeds(root, *add, timeout=SLOW_GIT_TIMEOUT_S)
        recorded = record.succeeded()
    if added:
        return Worktree(repo_root=str(root), path=str(path), branch=branch, base_commit=base_commit)
    if recorded and _tip(root, branch) != base_commit:
        git_succeeds(root, "config", "--unset", key)
    return None


def _add(root: Path, branch: str, path: Path, base: str) -> Worktree:
    if _ref_exists(root, f"refs/heads/{branch}"):
        _worktree_add(root, branch, path, ("worktree", "add", str(path), branch))
        return _describe(root, path, branch, base)
    tracked = _remote_branch(root, branch)
    if tracked is not None:
        _worktree_add(root, branch, path, ("worktree", "add", "--track", "-b", branch, str(path), tracked))
        return _describe(root, path, branch, base)
    base_commit = _resolve(root, base)
    _worktree_add(root, branch, path, ("worktree", "add", "--no-track", "-b", branch, str(path), base_commit))
    try:
        run_git(root, "config", f"branch.{branch}.{BASE_CONFIG_KEY}", base_commit)
    except GitError:
        pass  # a hint only (config.lock held by someone else): the merge base stands in for it
    return Worktree(repo_root=str(root), path=str(path), branch=branch, base_commit=base_commit)


def _worktree_add(root: Path, branch: str, path: Path, args: tuple[str, ...]) -> None:
    """Run `git worktree add`; if it fails because the same worktree appeared meanwhile (a process that does
    not take corral's lock), that is success too."""
    try:
        run_git(root, *args, timeout=SLOW_GIT_TIMEOUT_S)
    except GitError as exc:
        entry = _entry_at(root, path)
        if entry is not None and entry.branch == branch and not entry.prunable:
            return
        raise GitError(
            f"cannot make a worktree for branch {branch!r} at {path}: {exc.stderr or exc}",
            argv=exc.argv,
            cwd=exc.cwd,
            returncode=exc.returncode,
            stderr=exc.stderr,
        ) from None


def _describe(root: Path, path: Path, branch: str, base: str, *, base_commit: str | None = None) -> Worktree:
    """The record of an existing worktree: its base is the one given, recorded, or the merge base."""
    recorded = _recorded_base(root, branch)
    if base_commit is None:
        base_commit = recorded or _merge_base(root, branch, base)
    return Worktree(
        repo_root=str(root),
        path=str(path),
        branch=branch,
        base_commit=base_commit,
        existing_branch=recorded is None,
    )


def _recorded_base(root: Path, branch: str) -> str | None:
    sha = git_answer(root, "config", "--get", f"branch.{branch}.{BASE_CONFIG_KEY}")
    return sha.strip() if sha is not None and _ref_exists(root, f"{sha.strip()}^{{commit}}") else None


def _merge_base(root: Path, branch: str, base: str) -> str:
    ref = f"refs/heads/{branch}"
    try:
        return run_git(root, "merge-base", ref, base).strip()
    except GitError:  # unrelated histories, or no such base: measure from the branch's tip
        return _resolve(root, ref)


def _resolve(root: Path, rev: str) -> str:
    try:
        return run_git(root, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip()
    except GitError:
        raise GitError(f"{rev!r} is not a commit in {root}; give a branch, tag or commit as base") from None


def _tip(root: Path, branch: str) -> str | None:
    out = git_answer(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{branch}")
    return out.strip() if out is not None else None


def _ref_exists(root: Path, ref: str) -> bool:
    return git_succeeds(root, "rev-parse", "--verify", "--quiet", "--end-of-options", ref)


def _remote_branch(root: Path, branch: str) -> str | None:
    """`<remote>/<branch>` when exactly one remote has the branch (what `git worktree add` would guess)."""
    remotes = run_git(root, "remote").split()
    found = [r for r in remotes if _ref_exists(root, f"refs/remotes/{r}/{branch}")]
    return f"{found[0]}/{branch}" if len(found) == 1 else None


def _dirty(path: Path) -> bool:
    out = run_git(path, "status", "--porcelain", "-z", "--untracked-files=all", "--ignore-submodules=none")
    return bool(out)


def _forget_missing(root: Path, entry: WorktreeEntry | None, doing: str) -> None:
    """Unregister a worktree whose directory is gone (only that one, unlike `git worktree prune`)."""
    if entry is None:
        return
    if entry.locked:
        raise WorktreeConflict(_locked_message(entry, doing))
    run_git(root, "worktree", "remove", entry.path)


def _refuse_unsafe(entry: WorktreeEntry, branch: str, doing: str) -> None:
    if entry.locked:
        raise WorktreeConflict(_locked_message(entry, doing))
    path = Path(entry.path)
    if entry.branch != branch:
        now = f"on {entry.branch!r}" if entry.branch else "on a detached HEAD (a rebase in progress?)"
        raise WorktreeConflict(
            f"cannot {doing} {path}: it is {now}, not on {branch!r}; finish or abort what is going on there "
            f"(`git -C {path} status` tells), then {doing} again"
        )
    git_dir = Path(run_git(path, "rev-parse", "--absolute-git-dir").strip())
    for name, what in _IN_PROGRESS.items():
        if (git_dir / name).exists():
            raise WorktreeConflict(
                f"cannot {doing} {path}: {what} is in progress there; finish or abort it "
                f"(`git -C {path} status` tells how), then {doing} again"
            )


def _locked_message(entry: WorktreeEntry, doing: str) -> str:
    reason = f" ({entry.lock_reason})" if entry.lock_reason else ""
    return (
        f"cannot {doing} {entry.path}: the worktree is locked{reason}; "
        f"if nothing needs it any more, `git worktree unlock {entry.path}` and {doing} again"
    )


def _commit_everything(path: Path, title: str) -> str | None:
    """`git add -A` and commit as the pause message; the new commit, or None when nothing was stageable."""
    run_git(path, "add", "-A", timeout=SLOW_GIT_TIMEOUT_S)
    if git_succeeds(path, "diff", "--cached", "--quiet", "--ignore-submodules=none"):
        return None
    message = PAUSE_MESSAGE.format(title=" ".join(title.split()) or "untitled")
    who = ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")
    identity = () if all(git_succeeds(path, "var", v) for v in who) else _FALLBACK_IDENTITY
    run_git(path, *identity, "commit", "--no-verify", "--quiet", "-m", message, timeout=SLOW_GIT_TIMEOUT_S)
    return run_git(path, "rev-parse", "HEAD").strip()
