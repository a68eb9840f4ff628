"""The routes of an instance's branch: what it changed, and getting it to a person or to GitHub.

    GET  /v1/repos/{project}/instances/{title}/diff      InstanceDiff (its changes against its base)
    POST /v1/repos/{project}/instances/{title}/push      {remote?} → BranchPushed
    POST /v1/repos/{project}/instances/{title}/pr        {title?, body?, base?, remote?, draft?}
                                                         → PullRequestOpened
    POST /v1/repos/{project}/instances/{title}/checkout  → BranchCheckout (paused, and the commands to run)

`{title}` may be abbreviated as in the other instance routes (instances.py). The work is git's and gh's, on
the desk's own threads (the loop never waits on it): the instance is resolved by its Project, its branch,
worktree and base commit read from its row in the store.

Errors: 409 for an instance with no branch of its own (started with worktree `none`), a push the remote
refuses or a pull request gh refuses (with their own messages); 404 for a remote the repository does not have
(naming its remotes and `git remote add`); 424 when `gh` is missing or not logged in (saying what to run —
checked before anything is pushed). A pull request pushes the branch first: `gh pr create` needs it on the
remote.
"""

from __future__ import annotations

import concurrent.futures
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from actors.git import GitError, NoRemoteError, Worktree, push_branch, run_git
from actors.git.difftext import MAX_DIFF_BYTES, diff_text
from actors.git.github import create_pull_request, gh_ready
from actors.instance import InstancePause
from actors.project_inbox import InstanceEntry
from frontends.daemon.api import CONTROL
from frontends.daemon.http import json_response, read_body, route
from frontends.daemon.instances import ACTION_TIMEOUT_S, InstanceDesk, NoBody, settle
from protocols.errors import ConflictError, UsageError
from protocols.instances import (
    BranchCheckout,
    BranchPushed,
    InstanceDiff,
    PullRequest,
    PullRequestOpened,
    PushRequest,
)
from protocols.records import InstanceRecord

__all__ = ["BranchDesk", "add_branch_routes"]

PR_BODY_MAX = 60_000  # GitHub refuses a body over 65,536 characters


class BranchDesk:
    """Answers branch requests on threads of its own; every public method returns a Future at once."""

    def __init__(
        self, instances: InstanceDesk, store_call: Callable[..., concurrent.futures.Future[Any]]
    ) -> None:
        self._instances = instances
        self._store_call = store_call
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="corral-branches")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def diff(self, project: str, title: str) -> concurrent.futures.Future[InstanceDiff]:
        return self._pool.submit(self._diff, project, title)

    def push(self, project: str, title: str, body: PushRequest) -> concurrent.futures.Future[BranchPushed]:
        return self._pool.submit(self._push, project, title, body)

    def pull_request(
        self, project: str, title: str, body: PullRequest
    ) -> concurrent.futures.Future[PullRequestOpened]:
        return self._pool.submit(self._pull_request, project, title, body)

    def checkout(self, project: str, title: str) -> concurrent.futures.Future[BranchCheckout]:
        return self._pool.submit(self._checkout, project, title)

    # -- on the desk's threads --------------------------------------------------------------------------

    def _branch_of(self, project: str, title: str) -> tuple[InstanceEntry, InstanceRecord, str]:
        """The instance, its row and its repository's root; ConflictError when it has no branch of its own."""
        entry = self._instances.resolve(project, title)
        record = self._instances.record(entry)
        if record is None or not record.branch or record.worktree_mode in ("none", "shared"):
            where = (
                "its task's shared worktree"
                if record is not None and record.worktree_mode == "shared"
                else ("the repository itself")
            )
            raise ConflictError(
                f'instance "{entry.title}" has no branch of its own (it works in {where}): '
                "push, open pull requests or check out from the repository or the task instead"
            )
        root = self._store_call(lambda store: store.get_project(project).root).result(timeout=30)
        return entry, record, root

    def _diff(self, project: str, title: str) -> InstanceDiff:
        entry = self._instances.resolve(project, title)
        record = self._instances.record(entry)
        path = record.worktree_path if record is not None else entry.worktree
        base = (record.base_commit if record is not None else "") or "HEAD"
        if not path:
            raise ConflictError(
                f'instance "{entry.title}" has no worktree of its own (it works in the repository itself): '
                "there is no base to diff against; run git diff in the repository"
            )
        root = self._store_call(lambda store: store.get_project(project).root).result(timeout=30)
        try:
            text = diff_text(root, path, base=base, branch=entry.branch)
        except GitError as exc:
            raise ConflictError(f'cannot diff instance "{entry.title}": {exc}') from None
        return InstanceDiff(
            project=project,
            title=entry.title,
            base=base,
            branch=entry.branch,
            worktree=path if Path(path).is_dir() else "",
            stat=text.stat,
            diff=text.diff,
            truncated=text.truncated,
            limit_bytes=MAX_DIFF_BYTES,
        )

    def _push(self, project: str, title: str, body: PushRequest) -> BranchPushed:
        entry, record, root = self._branch_of(project, title)
        commit = _push(root, record, body.remote)
        wt = Path(record.worktree_path)
        dirty = wt.is_dir() and bool(run_git(wt, "status", "--porcelain", "--untracked-files=normal").strip())
        return BranchPushed(
            project=project,
            title=entry.title,
            branch=record.branch,
            remote=body.remote,
            commit=commit,
            uncommitted=dirty,
        )

    def _pull_request(self, project: str, title: str, body: PullRequest) -> PullRequestOpened:
        entry, record, root = self._branch_of(project, title)
        gh = gh_ready()  # before anything is pushed: a missing or logged-out gh changes nothing
        pr_title, pr_body = body.title, body.body
        if not pr_title or not pr_body:
            default_title, default_body = self._pr_text(project, entry, record)
            pr_title, pr_body = pr_title or default_title, pr_body or default_body
        commit = _push(root, record, body.remote)
        url = create_pull_request(
            root, gh=gh, branch=record.branch, title=pr_title, body=pr_body, base=body.base, draft=body.draft
        )
        return PullRequestOpened(
            project=project,
            title=entry.title,
            branch=record.branch,
            commit=commit,
            url=url,
            pr_title=pr_title,
        )

    def _pr_text(self, project: str, entry: InstanceEntry, record: InstanceRecord) -> tuple[str, str]:
        """A task's title and brief, or a standalone instance's title and prompt, with where it came from."""
        footer = f"\n\n---\nOpened by corral from instance `{entry.title}` (branch `{record.branch}`)."
        if entry.task:

            def read(store: Any) -> tuple[str, str]:
                task = store.get_task(store.get_project(project).id, entry.task)
                return task.title or task.name, task.content

            title, content = self._store_call(read).result(timeout=30)
            return title, content[:PR_BODY_MAX].strip() + footer
        return entry.title, (record.prompt[:PR_BODY_MAX].strip() + footer).strip()

    def _checkout(self, project: str, title: str) -> BranchCheckout:
        entry, record, root = self._branch_of(project, title)
        running = entry.final is None and record.status != "paused"
        if running:
            self._instances.act(project, entry.title, InstancePause()).result(timeout=ACTION_TIMEOUT_S + 10)
        wt = record.worktree_path
        q = shlex.quote
        if wt and Path(wt).is_dir():  # an ended instance keeps its worktree: the branch is checked out there
            commands: tuple[str, ...] = (f"cd {q(wt)}",)
            resume = f"corral instance restart {q(entry.title)}"
        else:
            commands = (f"cd {q(root)}", f"git switch {q(record.branch)}")
            resume = f"git switch - && corral instance resume {q(entry.title)}"
        return BranchCheckout(
            project=project,
            title=entry.title,
            branch=record.branch,
            paused=running,
            commands=commands,
            resume=resume,
        )


def _push(root: str, record: InstanceRecord, remote: str) -> str:
    if not remote or remote.startswith("-") or any(c.isspace() for c in remote):
        raise UsageError(f"remote must be the name of one of the repository's remotes, got {remote!r}")
    wt = Worktree(
        repo_root=root, path=record.worktree_path, branch=record.branch, base_commit=record.base_commit
    )
    try:
        return push_branch(wt, remote)
    except NoRemoteError:
        raise
    except GitError as exc:
        raise ConflictError(f"cannot push {record.branch} to {remote}: {exc}") from None


# -- routes -------------------------------------------------------------------------------------------------


def add_branch_routes(app: web.Application) -> None:
    app.router.add_get(route("/v1/repos/{project}/instances/{title}/diff"), _diff)
    for action, handler in (("push", _push_route), ("pr", _pr_route), ("checkout", _checkout_route)):
        app.router.add_post(route(f"/v1/repos/{{project}}/instances/{{title}}/{action}"), handler)


async def _settled(request: web.Request, future: concurrent.futures.Future[Any]) -> web.Response:
    result = await settle(future, ACTION_TIMEOUT_S + 10)
    return result if isinstance(result, web.Response) else json_response(result)


def _where(request: web.Request) -> tuple[str, str]:
    return request.match_info["project"], request.match_info["title"]


async def _diff(request: web.Request) -> web.Response:
    return await _settled(request, request.app[CONTROL].branches.diff(*_where(request)))


async def _push_route(request: web.Request) -> web.Response:
    body = PushRequest() if not request.can_read_body else await read_body(request, PushRequest)
    return await _settled(request, request.app[CONTROL].branches.push(*_where(request), body))


async def _pr_route(request: web.Request) -> web.Response:
    body = PullRequest() if not request.can_read_body else await read_body(request, PullRequest)
    return await _settled(request, request.app[CONTROL].branches.pull_request(*_where(request), body))


async def _checkout_route(request: web.Request) -> web.Response:
    if request.can_read_body:
        await read_body(request, NoBody)
    return await _settled(request, request.app[CONTROL].branches.checkout(*_where(request)))
