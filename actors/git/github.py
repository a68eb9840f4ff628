"""GitHub's `gh`, for the one thing corral asks of it: open a pull request for an instance's branch.

    url = create_pull_request(root, branch="corral/fix-login", title="Fix the login form", body="…")

`gh` is found on PATH when asked (installing it needs no daemon restart). Before anything is pushed or
created, `gh auth status` must say it is logged in: a missing `gh` and a `gh` that is not logged in are
`ToolError`s that say what to run, and nothing has been changed by then. Every call has a timeout, no
shell, stdin closed, and `GH_PROMPT_DISABLED` set (gh never waits for a terminal nobody watches).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from protocols.errors import ConflictError, ToolError

__all__ = ["GH_TIMEOUT_S", "create_pull_request", "gh_ready"]

GH_TIMEOUT_S = 60.0
INSTALL_HINT = "install the GitHub CLI (https://cli.github.com) and run `gh auth login`"


def gh_ready() -> str:
    """The path of a logged-in `gh`; ToolError saying which of the two is missing, and what to run."""
    gh = shutil.which("gh")
    if gh is None:
        raise ToolError(f"gh is not installed (not on the daemon's PATH): {INSTALL_HINT}")
    status = _run([gh, "auth", "status"], os.getcwd())
    if status.returncode != 0:
        said = (status.stderr or status.stdout).strip().splitlines()
        detail = f" ({said[0].strip()})" if said else ""
        raise ToolError(f"gh is not logged in to GitHub{detail}: run `gh auth login`")
    return gh


def create_pull_request(
    root: str, *, gh: str, branch: str, title: str, body: str, base: str = "", draft: bool = False
) -> str:
    """`gh pr create` for `branch` (already pushed) in the repository at `root` → the pull request's URL.
    ConflictError with gh's own message when gh refuses (one already exists for the branch, say)."""
    argv = [gh, "pr", "create", "--head", branch, "--title", title, "--body", body]
    if base:
        argv += ["--base", base]
    if draft:
        argv.append("--draft")
    done = _run(argv, root)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise ConflictError(f"gh pr create for {branch} failed: {said}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _run(argv: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GH_PROMPT_DISABLED": "1", "NO_COLOR": "1"}
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(
            f"{' '.join(argv[:3])} did not answer within {GH_TIMEOUT_S:g} s; was it stopped?"
        ) from None
    except OSError as exc:
        raise ToolError(f"cannot run {argv[0]} ({exc.strerror or exc}): {INSTALL_HINT}") from None
