"""Find the project a command runs in: the root of the MAIN repository, also from inside a linked worktree.

    find_project_root(Path("/src/app/.worktrees/fix-login/pkg"))  →  Path("/src/app")

Agents call `corral signal emit` from their worktrees many times an hour, so the common layouts are resolved
by reading files, without spawning git (a git process costs a few milliseconds):

- a `.git` directory → its parent is the root;
- a `.git` file (`gitdir: /src/app/.git/worktrees/<name>`) → the `commondir` file in that gitdir names the
  main `.git` directory → its parent is the root; without a `commondir` the gitdir is a repository of its own
  (`git init --separate-git-dir`, a submodule) whose work tree is the directory holding the `.git` file.

Anything else — `GIT_DIR` set in the environment, a main git directory not called `.git`, a gitfile that does
not parse — is asked of git itself (`git rev-parse`, with a timeout). A bare repository has no work tree and
is not a project.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from protocols.errors import NotInRepoError

__all__ = ["GIT_TIMEOUT_S", "find_project_root"]

GIT_TIMEOUT_S = 10.0
"""How long the git fallback may take before corral gives up on it."""


def find_project_root(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The absolute, symlink-free root of the main repository that `cwd` belongs to.

    Raises NotInRepoError when `cwd` is not inside a git work tree (or only inside a bare repository).
    """
    env = os.environ if env is None else env
    start = Path(cwd if cwd is not None else os.getcwd()).resolve()
    if env.get("GIT_DIR") or env.get("GIT_COMMON_DIR"):
        return _ask_git(start, env)
    for directory in (start, *start.parents):
        dotgit = directory / ".git"
        if dotgit.is_dir():
            if _looks_like_git_dir(dotgit):
                return directory
            continue  # git skips a `.git` directory that is not a repository; so do we
        if dotgit.is_file():
            root = _root_from_gitfile(directory, dotgit)
            return root if root is not None else _ask_git(start, env)
    raise NotInRepoError()


def _looks_like_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def _root_from_gitfile(work_tree: Path, gitfile: Path) -> Path | None:
    """Resolve a `.git` file by reading it; None when only git itself can tell."""
    try:
        text = gitfile.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    prefix = "gitdir:"
    if not text.startswith(prefix):
        return None
    gitdir = (work_tree / text[len(prefix) :].strip()).resolve()
    commondir_file = gitdir / "commondir"
    if not commondir_file.is_file():
        # A repository of its own (separate git dir, submodule): this work tree is its main one.
        return work_tree if (gitdir / "HEAD").is_file() else None
    try:
        common = (gitdir / commondir_file.read_text(encoding="utf-8").strip()).resolve()
    except OSError:
        return None
    if common.name == ".git" and _looks_like_git_dir(common):
        return common.parent
    return None  # the main work tree lives elsewhere (core.worktree) or the repository is bare: ask git


def _ask_git(cwd: Path, env: Mapping[str, str]) -> Path:
    """Ask git for the common git dir, then the main work tree; NotInRepoError when there is none."""
    common = _git(cwd, env, "rev-parse", "--path-format=absolute", "--git-common-dir")
    if common is None:
        raise NotInRepoError()
    common_dir = Path(common).resolve()
    if common_dir.name == ".git":
        return common_dir.parent
    # `git worktree list` names the main work tree first, or marks the repository bare.
    listing = _git(cwd, env, "worktree", "list", "--porcelain")
    if listing is None:
        raise NotInRepoError()
    first: list[str] = listing.split("\n\n", 1)[0].splitlines()
    if "bare" in first or not first or not first[0].startswith("worktree "):
        raise NotInRepoError()
    main = Path(first[0].removeprefix("worktree ")).resolve()
    if main == common_dir:
        # A separate git dir seen from a linked worktree: git itself cannot name the main work tree.
        raise NotInRepoError(
            f"corral cannot tell where the main work tree of {common_dir} is (its git directory is "
            "separate); run corral from the main work tree"
        )
    return main


def _git(cwd: Path, env: Mapping[str, str], *args: str) -> str | None:
    import subprocess  # only the uncommon layouts pay for it

    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip()
