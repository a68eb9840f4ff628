"""`corral instance …`: start, list and steer agents, through the daemon (started when none runs).

Every command finds the repository it runs in (or `--project NAME`), registers it with the daemon and calls
the instance routes of the control API (docs/instances.md). A TITLE may be abbreviated: the exact title, else
the one title it begins, else the one title containing it; an ambiguous one is a usage error (exit 2) that
names the matches, an unknown one a failure (exit 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from frontends.cli.context import add_project_option
from frontends.cli.inputs import read_text
from frontends.cli.output import (
    HelpFormatter,
    display_width,
    format_fields,
    format_table,
    positive_int,
    print_json,
    terminal_safe,
)
from protocols.errors import ConflictError, CorralError, NotFoundError, UsageError

if TYPE_CHECKING:
    from frontends.daemon import DaemonClient

__all__ = ["ACTION_TIMEOUT_S", "InstanceApi", "register"]

STATUSES = ("loading", "running", "ready", "waiting", "exited", "failed", "paused", "unknown")
_LIST_TIMEOUT_S = 20.0
ACTION_TIMEOUT_S = 75.0  # above the daemon's own limit, so its error arrives rather than our timeout
_MIN_REASON = 12

_DESCRIPTION = """\
An instance is one agent (claude, codex, aider, any command) with its own git worktree on its own branch \
(corral/<title>), running in corral's tmux server (tmux -L corral), a PTY, or as an SDK process. The daemon \
supervises it: a crashed agent is restarted with backoff and continues its conversation, and its status \
(loading, running, ready, waiting, exited, failed, paused) always carries the reason it was chosen.

TITLE may be abbreviated: the exact title, else the one title it begins, else the one containing it."""

_EPILOG = """\
examples:
  corral instance start fix-login --prompt "Fix the login form"
  corral instance list
  corral instance list --status waiting --json
  corral instance send fix-login "yes, and add a test"
  corral instance capture fix-login --lines 20
  corral instance attach fix-login
  corral instance pause fix-login; corral instance resume fix-login
  corral instance kill fix-login; corral instance delete fix-login --yes
  corral instance diff fix-login; corral instance push fix-login; corral instance pr fix-login"""


def register(groups: Any, summary: str) -> None:
    """Add `instance` and its sub-commands to the top-level sub-parsers."""
    raw = HelpFormatter
    parser = groups.add_parser(
        "instance", help=summary, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=raw
    )
    sub = parser.add_subparsers(title="instance commands", metavar="COMMAND", dest="instance_command")
    sub.required = True

    def command(name: str, help: str, description: str, examples: str, handler: Any) -> Any:
        p = sub.add_parser(
            name, help=help, description=description, epilog=f"examples:\n{examples}", formatter_class=raw
        )
        add_project_option(p)
        p.set_defaults(handler=handler)
        return p

    p = command(
        "list",
        "list the project's instances with their status and its reason",
        "List the instances of this project: TITLE STATUS REASON MODE PROGRAM BRANCH TASK RESTARTS. On a "
        "terminal the reason is shortened to fit its width; --json has everything.",
        "  corral instance list\n  corral instance list --status waiting,failed\n"
        "  corral instance list --json | jq '.[] | {title, status, reason}'",
        _list,
    )
    p.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help=f"only instances in STATUS ({', '.join(STATUSES[:-1])}); repeat or separate with commas",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of instances")

    p = command(
        "start",
        "start an agent in its own worktree",
        "Start an agent called TITLE on a new branch corral/TITLE in its own worktree (.worktrees/), or on "
        "--branch. The program defaults to the config's default_program (claude); the first prompt is "
        "passed as the harness takes it (an argument, or typed once the agent is ready).",
        "  corral instance start fix-login --prompt 'Fix the login form'\n"
        "  corral instance start review-1 --program codex --mode sdk --prompt-file review.md\n"
        "  corral instance start hotfix --branch release/1.2",
        _start,
    )
    p.add_argument("title", metavar="TITLE", help="the instance's title (also its branch's and session's)")
    p.add_argument("--program", default="", help="the agent's command (default: default_program)")
    p.add_argument("--mode", choices=("tmux", "pty", "sdk"), default="tmux", help="how it runs (tmux)")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default="", metavar="TEXT", help="the first prompt")
    prompt.add_argument("--prompt-file", metavar="PATH", help="read the first prompt from PATH ('-': stdin)")
    p.add_argument("--task", default="", help="the task it works on")
    p.add_argument("--agent-type", default="", help="its role: planner, coder, reviewer, …")
    p.add_argument("--branch", default="", help="work on this existing (or new) branch")
    p.add_argument(
        "--worktree",
        choices=("own", "branch", "shared", "none"),
        default="",
        help="own (default), branch (with --branch), shared (the task's), none (the repository itself)",
    )
    p.add_argument("--json", action="store_true", help="print the instance as JSON")

    p = command(
        "show",
        "show one instance",
        "Show an instance: status and reason, how it runs, its branch and worktree, its process.",
        "  corral instance show fix-login\n  corral instance show fix --json",
        _show,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("--json", action="store_true", help="print the instance as JSON")

    p = command(
        "send",
        "type text into an agent and press Enter",
        "Send TEXT (or the contents of --file, or stdin) to the agent as if typed, then Enter. Long and "
        "multi-line text is pasted.",
        "  corral instance send fix-login 'also handle empty passwords'\n"
        "  corral instance send fix-login --file feedback.md\n  echo 1 | corral instance send fix-login",
        _send,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("text", metavar="TEXT", nargs="?", help="the text (else --file, else stdin)")
    p.add_argument("--file", metavar="PATH", help="read the text from PATH ('-': stdin)")
    p.add_argument("--no-enter", action="store_true", help="type the text without pressing Enter")

    p = command(
        "send-keys",
        "press keys in an agent's terminal (tmux key names)",
        "Press KEYs in the agent's terminal, tmux style: Enter, Escape, Up, C-c, or literal text such as 1.",
        "  corral instance send-keys fix-login 1\n  corral instance send-keys fix-login Escape",
        _send_keys,
    )
    p.add_argument("title", metavar="TITLE")
    p.add_argument("keys", metavar="KEY", nargs="+")

    p = command(
        "capture",
        "print an agent's screen",
        "Print the last --lines lines of the agent's screen and history (50), or all of it with --all.",
        "  corral instance capture fix-login\n  corral instance capture fix-login --all > fix-login.txt",
        _capture,
    )
    p.add_argument("title", metavar="TITLE")
    lines = p.add_mutually_exclusive_group()
    lines.add_argument("--lines", type=_line_count, default=50, metavar="N", help="the last N lines (50)")
    lines.add_argument("--all", action="store_true", help="the whole history")
    p.add_argument("--ansi", action="store_true", help="keep colours and attributes (escape sequences)")
    p.add_argument("--json", action="store_true", help='print {"project", "title", "lines", "text"}')

    for name, help, description, done in (
        (
            "pause",
            "stop an agent and keep its work on its branch",
            "Stop the agent, commit its uncommitted work as '[corral] paused TITLE', remove its worktree and "
            "keep the branch. resume brings it back.",
            "paused",
        ),
        (
            "resume",
            "put a paused agent's worktree back and start it again",
            "Put the worktree back where it was (refused while its branch is checked out elsewhere) and "
            "start the agent again, continuing its conversation.",
            "resumed",
        ),
        (
            "restart",
            "kill the agent and start it again",
            "Kill the agent and everything it started, then start it again with its restart count reset, "
            "continuing its conversation where the harness can (also brings back a failed or killed "
            "instance). A paused instance is resumed: its worktree put back and its agent started.",
            "restarted",
        ),
        (
            "kill",
            "kill the agent; the instance stays, exited",
            "Kill the agent and everything it started (a restart pending after a crash is cancelled). The "
            "instance stays listed as exited (killed by request), with its branch and worktree, and holds "
            "nothing in the daemon; restart starts it again. Printed: the status after the kill.",
            "killed",
        ),
    ):
        examples = f"  corral instance {name} fix-login"
        if name == "kill":
            description += " With --orphan, kill an orphan tmux session (see orphans) and its processes."
            examples += "\n  corral instance kill --orphan corral_app_old-run"
        p = command(name, help, description, examples, _lifecycle(name, done))
        p.add_argument("title", metavar="TITLE", nargs="?" if name == "kill" else None)
        if name == "kill":
            p.add_argument("--orphan", metavar="SESSION", help="kill this orphan tmux session instead")
        p.add_argument("--json", action="store_true", help="print the instance as JSON")

    p = command(
        "delete",
        "delete an ended instance: its record, worktree and branch (needs --yes)",
        "Delete an instance that has ended (exited, killed or failed): its record, its worktree and its "
        "branch. A running or paused instance is refused: kill it first. Work that nothing else keeps — "
        "commits on its branch that no other branch, tag or remote branch has, uncommitted changes in its "
        "worktree — is refused too, naming it; --force discards it. A task's shared worktree and branch, one "
        "another instance uses, and a branch corral did not create are kept (and said so). TITLE must be "
        "exact. Without --yes nothing is deleted: the error says what would be.",
        "  corral instance delete fix-login --yes\n"
        "  corral instance delete fix-login --force --yes   # and discard its unmerged work\n"
        "  corral instance kill fix-login && corral instance delete fix-login --yes",
        _delete,
    )
    p.add_argument("title", metavar="TITLE", help="the instance's exact title")
    p.add_argument(
        "--force", action="store_true", help="discard its unmerged commits and uncommitted changes"
    )
    p.add_argument("--yes", action="store_true", help="required: confirm the deletion")
    p.add_argument("--json", action="store_true", help="print what was deleted as JSON")

    p = command(
        "orphans",
        "list corral's tmux sessions that no instance claims",
        "List the sessions on corral's tmux server (corral_…) that no recorded instance claims — started by "
        "hand, or left by a corral whose database was lost: SESSION PID COMMAND CWD CREATED. Each can be "
        "adopted (adopt), attached (the attach command of --json) or killed (kill --orphan).",
        "  corral instance orphans\n  corral instance orphans --json",
        _orphans,
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of orphan sessions")

    p = command(
        "adopt",
        "make an instance of an orphan tmux session",
        "Make an instance of the orphan tmux SESSION: the agent keeps running and is supervised from now on "
        "(mode tmux, the program it runs, no worktree of its own). Its title is --title, else the session's "
        "name without corral_<project>_.",
        "  corral instance adopt corral_app_old-run\n  corral instance adopt corral_x --title rescue",
        _adopt,
    )
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--title", default="", help="the instance's title")
    p.add_argument("--json", action="store_true", help="print the instance as JSON")

    p = command(
        "attach",
        "attach this terminal to a tmux or pty agent (detach: ctrl-q)",
        "Attach this terminal to the agent: a tmux agent's session on corral's tmux server, a pty agent's "
        "terminal through the daemon. Detach with ctrl-q (or ctrl+space), also inside your own tmux: the "
        "agent keeps running. sdk agents have no terminal: use capture and send.",
        "  corral instance attach fix-login",
        _attach,
    )
    p.add_argument("title", metavar="TITLE")

    from frontends.cli.instance_branches import register_branch_commands

    register_branch_commands(command)


# -- talking to the daemon ----------------------------------------------------------------------------------


class InstanceApi:
    """The daemon, for one project: paths built, errors turned into exit codes."""

    def __init__(self, project: str) -> None:
        from frontends.cli.autostart import daemon_client

        self.client: DaemonClient = daemon_client()
        self.project = self._register(project) if not project or "/" in project else project
        self.base = f"/v1/repos/{quote(self.project, safe='')}/instances"

    def _register(self, path: str) -> str:
        """The project of the repository at `path` (a path given to --project), else at cwd, registered
        with the daemon (it finds the main repository's root itself)."""
        from pathlib import Path

        from frontends.project import find_project_root

        directory = Path(path).expanduser().resolve() if path else find_project_root()
        return str(self.call("POST", "/v1/repos", json={"path": str(directory)}, path_is_full=True)["name"])

    def call(
        self,
        method: str,
        path: str = "",
        json: Any = None,
        timeout: float = _LIST_TIMEOUT_S,
        *,
        path_is_full: bool = False,
    ) -> Any:
        full = path if path_is_full else self.base + path
        status, body = self.client.request(method, full, json=json, timeout=timeout)
        if 200 <= status < 300:
            return body
        message = body.get("error") if isinstance(body, dict) else None
        message = message or f"the corral daemon answered {status} to {method} {full}: {body}"
        error: type[CorralError] = {400: UsageError, 404: NotFoundError, 409: ConflictError}.get(
            status, CorralError
        )
        raise error(message)

    def instance(
        self, title: str, action: str = "", json: Any = None, timeout: float = ACTION_TIMEOUT_S
    ) -> Any:
        path = f"/{quote(title, safe='')}" + (f"/{action}" if action else "")
        return self.call("POST" if action else "GET", path, json=json, timeout=timeout)


# -- commands -----------------------------------------------------------------------------------------------

_HEADERS = ("TITLE", "STATUS", "REASON", "MODE", "PROGRAM", "BRANCH", "TASK", "RESTARTS")


def _list(args: argparse.Namespace) -> int:
    wanted = [s.strip() for text in args.status or () for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise UsageError(f"unknown status {unknown[0]!r}: use {', '.join(STATUSES)}")
    api = InstanceApi(args.project)
    query = "?status=" + ",".join(wanted) if wanted else ""
    views = api.call("GET", query)
    if args.json:
        print_json(views)
        return 0
    if not views:
        print(
            f"no instances match in project {api.project}"
            if wanted
            else f"no instances in project {api.project}"
        )
        return 0
    rows = [
        [
            v["title"],
            v["status"],
            v["reason"] or "-",
            v["mode"],
            os.path.basename(v["program"]) or "-",
            v["branch"] or "-",
            v["task"] or "-",
            str(v["restarts"]),
        ]
        for v in views
    ]
    width = _terminal_width()
    if width:
        _fit_reasons(rows, width)
    print(format_table(_HEADERS, rows))
    return 0


def _terminal_width() -> int:
    """The width to fit the table into: the terminal's, or $COLUMNS; 0 (no limit) when piped."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return 0


def _fit_reasons(rows: list[list[str]], width: int, gap: int = 2) -> None:
    """Shorten the REASON column (index 2) so that each line fits in `width`, keeping at least a few
    characters of it: the reason is the point of the list."""
    others = sum(
        max(display_width(str(cell)) for cell in (_HEADERS[i], *(row[i] for row in rows)))
        for i in range(len(_HEADERS))
        if i != 2
    )
    room = max(_MIN_REASON, width - others - gap * (len(_HEADERS) - 1))
    for row in rows:
        reason = " ".join(row[2].split())
        if display_width(reason) > room:
            cut = reason
            while display_width(cut) > room - 1:
                cut = cut[:-1]
            reason = cut.rstrip() + "…"
        row[2] = reason


def _start(args: argparse.Namespace) -> int:
    prompt = read_text(args.prompt_file) if args.prompt_file else args.prompt
    api = InstanceApi(args.project)
    body = {
        "title": args.title,
        "program": args.program,
        "mode": args.mode,
        "prompt": prompt,
        "task": args.task,
        "agent_type": args.agent_type,
        "branch": args.branch,
        "worktree": args.worktree,
    }
    view = api.call("POST", "", json=body, timeout=ACTION_TIMEOUT_S)
    if args.json:
        print_json(view)
        return 0
    where = f"on branch {view['branch']} in {view['worktree']}" if view["branch"] else "in the repository"
    print(
        terminal_safe(
            f"started {view['title']} ({view['mode']}, {view['program']}) {where}: {view['status']}"
        )
    )
    for note in view.get("notes") or ():
        print(terminal_safe(f"note: {note}"), file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    view = InstanceApi(args.project).instance(args.title, timeout=_LIST_TIMEOUT_S)
    if args.json:
        print_json(view)
        return 0
    metrics = view.get("metrics") or {}
    attach = view.get("attach") or {}
    fields = [
        ("title", view["title"]),
        ("project", view["project"]),
        ("status", view["status"]),
        ("reason", view["reason"] or "-"),
        ("mode", view["mode"]),
        ("program", view["program"]),
        ("branch", view["branch"] or "-"),
        ("worktree", view["worktree"] or "-"),
        ("task", view["task"] or "-"),
        ("agent type", view["agent_type"] or "-"),
        ("restarts", str(view["restarts"])),
        ("resources", view["resource_profile"] or "-"),
        ("session", view["session"]),
    ]
    if metrics.get("pid"):
        fields.append(("pid", str(metrics["pid"])))
    if attach.get("argv"):
        fields.append(("attach", " ".join(attach["argv"])))
    print(format_fields(fields))
    return 0


def _send(args: argparse.Namespace) -> int:
    if args.text is not None and args.file:
        raise UsageError("send: give TEXT or --file, not both")
    if args.text is not None:
        text = args.text
    elif args.file:
        text = read_text(args.file)
    elif not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        raise UsageError("send: give the TEXT, --file PATH, or pipe it on stdin")
    text = text.rstrip("\n") if args.text is None else text
    if not text:
        raise UsageError("send: the text is empty")
    view = InstanceApi(args.project).instance(args.title, "send", {"text": text, "enter": not args.no_enter})
    print(f"sent to {view['title']}: {view['status']}")
    return 0


def _send_keys(args: argparse.Namespace) -> int:
    view = InstanceApi(args.project).instance(args.title, "send-keys", {"keys": list(args.keys)})
    print(f"sent keys to {view['title']}: {view['status']}")
    return 0


def _line_count(text: str) -> int:
    return positive_int(text, low=0)


def _capture(args: argparse.Namespace) -> int:
    lines = None if args.all else args.lines
    captured = InstanceApi(args.project).instance(args.title, "capture", {"lines": lines, "ansi": args.ansi})
    if args.json:
        print_json(captured)
    elif captured["text"]:  # the agent's screen: shown, not acted on, unless colours were asked for
        print(captured["text"] if args.ansi else terminal_safe(captured["text"]))
    return 0


def _lifecycle(action: str, done: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "orphan", None):
            if args.title:
                raise UsageError("kill: give a TITLE or --orphan SESSION, not both")
            return _kill_orphan(args)
        if not args.title:
            raise UsageError(f"{action}: give the TITLE of an instance")
        view = InstanceApi(args.project).instance(args.title, action)
        if args.json:
            print_json(view)
            return 0
        status, reason = view["status"], view["reason"]
        shown = reason if reason.startswith(status) else f"{status} ({reason})" if reason else status
        print(terminal_safe(f"{done} {view['title']}: {shown}"))
        return 0

    return run


def _delete(args: argparse.Namespace) -> int:
    api = InstanceApi(args.project)
    flags = [f"{name}=true" for name, on in (("force", args.force), ("dry_run", not args.yes)) if on]
    query = "?" + "&".join(flags) if flags else ""
    deleted = api.call("DELETE", f"/{quote(args.title, safe='')}{query}", timeout=ACTION_TIMEOUT_S)
    title = deleted["title"]
    removed = ", ".join(
        part
        for part in (
            "its record",
            f"its worktree {deleted['worktree']}" if deleted["worktree"] else "",
            f"its branch {deleted['branch']}" if deleted["branch"] else "",
        )
        if part
    )
    if not args.yes:
        kept = "".join(f"; it keeps {k}" for k in deleted["kept"])
        lost = "".join(f"; it discards {d}" for d in deleted["discarded"])
        again = f"corral instance delete {title}{' --force' if args.force else ''} --yes"
        raise UsageError(
            terminal_safe(
                f'delete removes instance "{title}" ({deleted["status"]}) for good: {removed}{kept}{lost}. '
                f"Nothing was deleted. To delete it, add --yes: {again}"
            )
        )
    if args.json:
        print_json(deleted)
        return 0
    print(terminal_safe(f"deleted {title} ({deleted['status']}): {removed}"))
    for kept in deleted["kept"]:
        print(terminal_safe(f"kept {kept}"))
    for lost in deleted["discarded"]:
        print(terminal_safe(f"discarded {lost}"))
    return 0


def _orphans(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    api = InstanceApi(args.project)
    orphans = api.call("GET", "/v1/orphans", path_is_full=True)
    if args.json:
        print_json(orphans)
        return 0
    if not orphans:
        print("no orphan tmux sessions")
        return 0
    rows = [
        [
            o["session"],
            str(o["pid"]),
            o["command"] or "-",
            o["cwd"] or "-",
            datetime.fromtimestamp(o["created_at"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
        ]
        for o in orphans
    ]
    print(format_table(("SESSION", "PID", "COMMAND", "CWD", "CREATED"), rows))
    return 0


def _adopt(args: argparse.Namespace) -> int:
    api = InstanceApi(args.project)
    path = f"/v1/repos/{quote(api.project, safe='')}/orphans/{quote(args.session, safe='')}/adopt"
    view = api.call("POST", path, json={"title": args.title}, timeout=ACTION_TIMEOUT_S, path_is_full=True)
    if args.json:
        print_json(view)
        return 0
    print(f"adopted {args.session} as {view['title']} ({view['mode']}, {view['program']}): {view['status']}")
    return 0


def _kill_orphan(args: argparse.Namespace) -> int:
    api = InstanceApi(args.project)
    path = f"/v1/orphans/{quote(args.orphan, safe='')}/kill"
    killed = api.call("POST", path, timeout=ACTION_TIMEOUT_S, path_is_full=True)
    if args.json:
        print_json(killed)
        return 0
    left = f"; survivors {killed['survivors']}" if killed["survivors"] else ""
    print(f"killed orphan session {killed['session']} (pid {killed['pid']}){left}")
    return 0


def _attach(args: argparse.Namespace) -> int:
    """As the dashboard attaches (frontends/dashboard/attach.py): ctrl-q detaches, also inside the person's
    own tmux (C-b d would detach that one instead); pty agents through the daemon."""
    import msgspec

    from frontends.dashboard.attach import attach

    api = InstanceApi(args.project)
    view = api.instance(args.title, timeout=_LIST_TIMEOUT_S)
    title = view["title"]
    if view["mode"] == "sdk":
        raise CorralError(
            f"instance {title} runs in sdk mode and has no terminal to attach; "
            f"watch it with: corral instance capture {title}, and answer with: corral instance send {title}"
        )
    no_session = view["mode"] == "tmux" and not view.get("attach")
    if view["status"] in ("paused", "exited", "failed") or no_session:
        hint = "resume" if view["status"] == "paused" else "restart"
        raise ConflictError(
            f"instance {title} is {view['status']}: there is no session to attach to; "
            f"corral instance {hint} {title} first"
        )
    if not sys.stdin.isatty():
        raise UsageError(
            f"corral instance attach needs a terminal; watch it with: corral instance capture {title}"
        )
    print(f"attaching to {title}; detach with ctrl-q (the agent keeps running)", file=sys.stderr)
    sys.stderr.flush()
    from protocols.instances import InstanceView

    problem = attach(msgspec.convert(view, InstanceView), sys.stdout, api.client)
    if problem:
        raise CorralError(problem)
    return 0
