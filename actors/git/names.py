"""Names: the branch an instance works on, and the directory its worktree lives in. Pure functions.

    branch_for("Fix the login page!")            # → "corral/fix-the-login-page"
    branch_for("Übersicht: ärger", prefix="me/") # → "me/übersicht-ärger"
    slug("fix-login")                            # → "fix-login"
    slug("corral/fix-login")                     # → "corral-fix-login-9dae716e"

A branch name is the title, lowercased and NFKC-normalized, with letters and digits of any script kept and
every run of anything else (spaces, slashes, `~^:?*[\\`, control characters, `@{`) turned into one `-`;
runs of dots become one dot, the ends are trimmed of `-._`, a trailing `.lock` becomes `-lock`, and it is cut
to 60 characters (at most 240 bytes, below the 255-byte file name limit that loose refs live under). A
title with nothing usable left becomes `untitled`. Two titles may give one branch: telling them apart is the
caller's business (the instance title is unique in a project).

A worktree's directory is `slug(branch)`. Unlike a branch it must be the same on every file system, including
case-insensitive ones, and two branches must never share one: so it is ASCII (`[a-z0-9._-]`), and whenever
that loses anything — a `/`, a capital, a non-ASCII letter — eight hex digits of the branch's SHA-256 are
appended. A branch that is already such a name is its own slug.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from actors.git.runner import BranchNameError

__all__ = ["MAX_NAME_CHARS", "branch_for", "check_branch_name", "is_valid_branch_name", "slug"]

MAX_NAME_CHARS = 60
"""The longest name part `branch_for` makes (the prefix comes on top) and the longest readable slug."""

_FALLBACK = "untitled"
_DOTS = re.compile(r"\.{2,}")
_DASHES = re.compile(r"-{2,}")
_TRIM = "-._"
_NOT_SLUG = re.compile(r"[^a-z0-9._-]+")
_LOSSLESS_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Characters git refuses anywhere in a ref name (git-check-ref-format(1), rules 3-5).
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_for(title: str, prefix: str = "corral/") -> str:
    """The branch an instance called `title` gets: `prefix` + the title made safe (see the module docstring).

    Deterministic, and always a name `git check-ref-format --branch` accepts; raises BranchNameError when the
    prefix makes it invalid (a prefix with a space, `..`, a leading `/` or `-`, …).
    """
    return check_branch_name(prefix + _name_part(title), what=f"branch prefix {prefix!r} gives a branch")


def slug(branch: str) -> str:
    """The directory, under `<repo>/.worktrees/`, of the worktree of `branch`: ASCII, unique per branch."""
    readable = _DASHES.sub("-", _NOT_SLUG.sub("-", branch.lower()))
    readable = _DOTS.sub(".", readable)[:MAX_NAME_CHARS].strip(_TRIM)
    if readable == branch and _LOSSLESS_SLUG.fullmatch(branch):
        return branch
    digest = hashlib.sha256(branch.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}" if readable else f"branch-{digest}"


def is_valid_branch_name(name: str) -> bool:
    """Whether git accepts `name` as a branch (`git check-ref-format --branch`), without running git.

    Slightly stricter than git: `@` alone, which git reads as HEAD in most commands, is refused too.
    """
    return _problem(name) is None


def check_branch_name(name: str, *, what: str = "branch") -> str:
    """Return `name` if it is a valid branch name, else raise BranchNameError saying which rule it breaks."""
    problem = _problem(name)
    if problem is not None:
        raise BranchNameError(f"{what} {name!r} is not a valid git branch name: {problem}")
    return name


def _name_part(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).lower()
    kept = "".join(c if c in "._-" or unicodedata.category(c)[0] in "LMN" else "-" for c in text)
    name = _DASHES.sub("-", _DOTS.sub(".", kept)).strip(_TRIM)
    name = name[:MAX_NAME_CHARS].rstrip(_TRIM)
    if name.endswith(".lock"):
        name = name.removesuffix(".lock") + "-lock"
    return name or _FALLBACK


def _problem(name: str) -> str | None:
    """The first rule of git-check-ref-format(1) that `refs/heads/<name>` breaks, or None."""
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it begins with '-'"
    if name in ("HEAD", "@"):
        return f"{name!r} means the current commit"
    bad = _BAD_CHARS.search(name)
    if bad:
        return f"it contains {bad.group()!r} (no spaces, control characters or ~ ^ : ? * [ \\)"
    if ".." in name:
        return "it contains '..'"
    if "@{" in name:
        return "it contains '@{'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "it has an empty path component (a leading, trailing or double '/')"
    if name.endswith("."):
        return "it ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return f"a component begins with '.' ({part!r})"
        if part.endswith(".lock"):
            return f"a component ends with '.lock' ({part!r})"
    return None
