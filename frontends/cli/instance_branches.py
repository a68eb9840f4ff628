"""`corral instance diff|push|pr|checkout|rename|answer`: what a dashboard does to an instance, from a shell.

Each is one route of the control API (docs/api.md: an instance's diff, its branch, renaming, answering), so
the CLI reaches everything the dashboard does. Registered by `frontends/cli/instances.py`.
"""

from __future__ import annotations

import argparse
from typing import Any

from frontends.cli.inputs import read_text
from frontends.cli.instances import ACTION_TIMEOUT_S, InstanceApi
from frontends.cli.output import print_json, terminal_safe
from protocols.errors import UsageError

__all__ = ["register_branch_commands"]


def register_branch_commands(command: Any) -> None:
    """Add the commands through `command(name, help, description, examples, handler)` → its parser."""
    p = command(
        "diff",
        "show what an instance changed against its base",
        "Show what the instance changed since the commit its branch started from: its commits, its "
        "uncommitted work and its untracked files (not ignored ones); for a paused instance, its branch's "
        "commits. First git's --stat, then the patch (cut after 1 MiB, and said so).",
        "  corral instance diff fix-login\n  corral instance diff fix-login --stat\n"
        "  corral instance diff fix-login --json | jq -r .diff > fix-login.patch",
        _diff,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("--stat", action="store_true", help="only the files changed and their counts")
    p.add_argument("--json", action="store_true", help="print the diff as JSON (stat, diff, truncated…)")

    p = command(
        "push",
        "push an instance's branch to a remote",
        "Push the instance's branch to REMOTE (origin) and set its upstream: its commits, also of a paused "
        "instance. Uncommitted work stays in the worktree (said so): commit it, or pause, which commits it.",
        "  corral instance push fix-login\n  corral instance push fix-login --remote fork",
        _push,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("--remote", default="origin", help="the remote to push to (origin)")
    p.add_argument("--json", action="store_true", help="print what was pushed as JSON")

    p = command(
        "pr",
        "push an instance's branch and open a GitHub pull request (gh)",
        "Push the instance's branch, then open a pull request with GitHub's gh (installed and logged in: "
        "gh auth login). The title and body default to the task's title and brief, or the instance's title "
        "and prompt. Prints the pull request's URL.",
        "  corral instance pr fix-login\n  corral instance pr fix-login --title 'Fix login' --draft\n"
        "  corral instance pr fix-login --body-file notes.md --base develop",
        _pr,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("--title", dest="pr_title", default="", metavar="TEXT", help="the pull request's title")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--body", default="", metavar="TEXT", help="the pull request's description")
    body.add_argument("--body-file", metavar="PATH", help="read the description from PATH ('-': stdin)")
    p.add_argument("--base", default="", help="the branch to merge into (the remote's default)")
    p.add_argument("--remote", default="origin", help="the remote to push to (origin)")
    p.add_argument("--draft", action="store_true", help="open it as a draft")
    p.add_argument("--json", action="store_true", help="print the pull request as JSON")

    p = command(
        "checkout",
        "pause an instance and print how to check its branch out",
        "Pause the instance (its work committed on its branch, its worktree removed, the agent stopped) and "
        "print the commands that check its branch out, and the one that gives it back to the agent.",
        "  corral instance checkout fix-login",
        _checkout,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("--json", action="store_true", help="print the branch and commands as JSON")

    p = command(
        "rename",
        "give a standalone instance another title",
        "Call the instance NEW: the agent goes on (a tmux agent is not even restarted; a pty or sdk one "
        "continues its conversation). Its session, branch and worktree keep their names. A task's agent "
        "cannot be renamed: its title is how its task finds it.",
        "  corral instance rename scratch login-spike",
        _rename,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("new_title", metavar="NEW")
    p.add_argument("--json", action="store_true", help="print the instance as JSON")

    p = command(
        "answer",
        "answer the question or permission prompt on an agent's screen",
        "Answer the prompt on the agent's screen yes (or no) with the keys its program wants: 1 for Claude "
        "Code's permission menu, y and Enter for a (Y)es/(N)o question. Fails when nothing on the screen "
        "asks.",
        "  corral instance answer fix-login\n  corral instance answer fix-login no",
        _answer,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("answer", metavar="ANSWER", nargs="?", choices=("yes", "no"), default="yes")
    p.add_argument("--json", action="store_true", help="print the instance as JSON")


def _diff(args: argparse.Namespace) -> int:
    diff = InstanceApi(args.project).call("GET", _path(args.title, "diff"), timeout=ACTION_TIMEOUT_S)
    if args.json:
        print_json(diff)
        return 0
    print(terminal_safe(diff["stat"]).rstrip("\n") or f"no changes since {diff['base'][:12]}")
    if not args.stat and diff["diff"]:
        print()
        print(terminal_safe(diff["diff"]).rstrip("\n"))
    if diff["truncated"] and not args.stat:
        cut = diff["limit_bytes"] // 1024
        print(f"… cut after {cut} KiB: see all of it with git diff {diff['base'][:12]} in its worktree")
    return 0


def _push(args: argparse.Namespace) -> int:
    pushed = InstanceApi(args.project).instance(args.title, "push", {"remote": args.remote})
    if args.json:
        print_json(pushed)
        return 0
    print(terminal_safe(f"pushed {pushed['branch']} ({pushed['commit'][:7]}) to {pushed['remote']}"))
    if pushed["uncommitted"]:
        print("its uncommitted changes were not pushed: commit them, or pause it (which commits them)")
    return 0


def _pr(args: argparse.Namespace) -> int:
    text = read_text(args.body_file) if args.body_file else args.body
    request = {
        "title": args.pr_title,
        "body": text,
        "base": args.base,
        "remote": args.remote,
        "draft": args.draft,
    }
    opened = InstanceApi(args.project).instance(args.title, "pr", request)
    if args.json:
        print_json(opened)
        return 0
    print(terminal_safe(f"opened {opened['url']} ({opened['branch']}: {opened['pr_title']})"))
    return 0


def _checkout(args: argparse.Namespace) -> int:
    checkout = InstanceApi(args.project).instance(args.title, "checkout")
    if args.json:
        print_json(checkout)
        return 0
    done = "paused" if checkout["paused"] else "not running"
    print(terminal_safe(f"{checkout['title']} is {done}; to check out {checkout['branch']}:"))
    for line in checkout["commands"]:
        print(terminal_safe(f"  {line}"))
    print(terminal_safe(f"to give it back to the agent afterwards:\n  {checkout['resume']}"))
    return 0


def _rename(args: argparse.Namespace) -> int:
    if not args.new_title.strip():
        raise UsageError("rename: give the NEW title")
    view = InstanceApi(args.project).instance(args.title, "rename", {"title": args.new_title})
    if args.json:
        print_json(view)
        return 0
    print(terminal_safe(f"renamed {args.title} to {view['title']}: {view['status']}"))
    return 0


def _answer(args: argparse.Namespace) -> int:
    view = InstanceApi(args.project).instance(args.title, "answer", {"answer": args.answer})
    if args.json:
        print_json(view)
        return 0
    print(terminal_safe(f"answered {args.answer} to {view['title']}: {view['status']}"))
    return 0


def _path(title: str, action: str) -> str:
    from urllib.parse import quote

    return f"/{quote(title, safe='')}/{action}"
