"""Fleets as the daemon would describe them, for the dashboard's pure tests and benchmark: the protocol
Structs the bridge decodes (InstanceView, TaskSummary), filled in the way `corral instance list` and
`task list` fill them, so what the tests draw is what a person would see."""

from __future__ import annotations

from typing import Any

import msgspec

from frontends.dashboard.model import AuditLine, Fleet, Orphan, Pane, State, Toast, View, WaveProgress
from protocols.instances import InstanceView
from protocols.records import TaskSummary, TaskWaiting

EPOCH = 1_765_000_000.0


def instance(title: str, status: str = "running", **fields: Any) -> InstanceView:
    base: dict[str, Any] = {
        "project": "app",
        "title": title,
        "status": status,
        "reason": "",
        "status_age_s": 12.0,
        "mode": "tmux",
        "program": "claude",
        "branch": f"corral/{title}",
        "worktree": f"/src/app/.worktrees/corral-{title}",
        "task": "",
        "agent_type": "",
        "restarts": 0,
        "resource_profile": "normal",
        "session": f"corral_app_{title}",
        "created_at": EPOCH,
        "metrics": {
            "pid": 4242,
            "processes": 2,
            "cpu_percent": 0.3,
            "rss_bytes": 31457280,
            "uptime_s": 754.0,
        },
    }
    base.update(fields)
    return InstanceView(**base)


def task(
    name: str,
    status: str = "ready",
    *,
    topic: str = "",
    phase: str = "",
    title: str = "",
    waiting: TaskWaiting | None = None,
    created: str = "2026-12-01T10:00:00Z",
) -> TaskSummary:
    return TaskSummary(
        id=abs(hash(name)) % 1000,
        project_id=1,
        name=name,
        title=title or name.replace("-", " ").capitalize(),
        status=status,
        phase=phase,
        topic=topic,
        branch=f"corral/{name}",
        content_bytes=120,
        review_cycle=0,
        latest_feedback="",
        created_at=created,
        updated_at=created,
        ready_at=created,
        planning_at="",
        implementing_at="",
        reviewing_at="",
        verifying_at="",
        done_at="",
        cancelled_at="",
        waiting=waiting,
    )


WAVE_QUESTION = TaskWaiting(
    reason="add-sso — wave 2: 3/5 tasks complete, 1 failed (task 2). Retry the failed tasks, go on to the "
    "next wave, mark a failed task complete once you fixed it by hand, or cancel the task",
    commands=(
        "corral signal emit retry_wave add-sso",
        "corral signal emit advance_wave add-sso",
        "corral signal emit implement_task_finished add-sso --payload "
        '\'{"wave_number": 2, "task_number": 2}\'',
        "corral task transition add-sso cancel",
    ),
    kind="wave_decision",
)

SCREEN = (
    "\x1b[1m╭───────────────────────────────╮\x1b[0m\n"
    "\x1b[1m│\x1b[0m \x1b[38;5;174m✻\x1b[0m Welcome to \x1b[1mClaude Code\x1b[0m!     \x1b[1m│\x1b[0m\n"
    "\x1b[1m╰───────────────────────────────╯\x1b[0m\n"
    "\n"
    "> implement the SSO callback\n"
    "\x1b[32m⏺\x1b[0m Update(\x1b[1msrc/sso.py\x1b[0m)\n"
    "  ⎿  Updated src/sso.py with 12 additions and 3 removals\n"
    "\x1b[31m-    return None\x1b[0m\n"
    "\x1b[32m+    return redirect(callback_url)\x1b[0m\n"
    "\n"
    "\x1b[38;5;220m Do you want to make this edit to sso.py?\x1b[0m\n"
    " ❯ 1. Yes\n"
    "   2. No, and tell Claude what to do differently\n"
)

DIFF = (
    "diff --git a/src/sso.py b/src/sso.py\n"
    "index 3b18e51..a9c2f4d 100644\n"
    "--- a/src/sso.py\n"
    "+++ b/src/sso.py\n"
    "@@ -10,7 +10,16 @@ def callback(request):\n"
    '     state = request.args.get("state")\n'
    "-    return None\n"
    "+    if not verify(state):\n"
    '+        raise Forbidden("bad state")\n'
    "+    return redirect(callback_url)\n"
)


def sample_fleet(*, connected: bool = True) -> Fleet:
    """Three tasks in two topics (one waits for a wave decision), their agents, and standalone agents."""
    tasks = (
        task("add-sso", "implementing", topic="auth", title="Single sign-on", waiting=WAVE_QUESTION),
        task("fix-login", "ready", topic="auth", phase="planned", title="Fix the login form"),
        task("docs", "ready", title="Write the docs"),
    )
    instances = (
        instance("add-sso-W2-T1", "running", task="add-sso", agent_type="coder", reason="output changed"),
        instance(
            "add-sso-W2-T2",
            "failed",
            task="add-sso",
            agent_type="coder",
            restarts=3,
            reason="exit status 1: Unable to connect to Anthropic services",
        ),
        instance(
            "add-sso-W2-T3",
            "waiting",
            task="add-sso",
            agent_type="coder",
            reason="permission prompt: Do you want to make this edit to sso.py?",
        ),
        instance(
            "fix-login-plan",
            "exited",
            task="fix-login",
            agent_type="planner",
            reason="its task is over (planner finished)",
        ),
        instance(
            "scratch",
            "ready",
            mode="sdk",
            program="codex",
            conversation_id="th_01J9ZQ4K",
            reason="turn completed",
        ),
        instance("codex-fast", "loading", mode="sdk-fast", program="codex", resource_profile="light"),
        instance("helper", "paused", reason="paused by request (its work is on branch corral/helper)"),
    )
    return Fleet(
        project="app",
        tasks=tasks,
        instances=instances,
        waves={"add-sso": WaveProgress(wave=2, waves=3, done=3, total=5, failed=1)},
        orphans=(Orphan(session="corral_app_old", command="claude", created=EPOCH - 7200),),
        audit=(
            AuditLine(
                ts="2026-12-08T01:40:02.1Z",
                kind="wave_started",
                message="add-sso: wave 2 of 3 started (5 tasks)",
                task="add-sso",
            ),
            AuditLine(
                ts="2026-12-08T01:41:10.5Z",
                kind="wave_failed",
                level="warn",
                task="add-sso",
                message="add-sso: wave 2 over: 3/5 complete, task 2 failed",
            ),
            AuditLine(
                ts="2026-12-08T01:41:11.0Z",
                kind="status",
                instance="add-sso-W2-T3",
                message="add-sso-W2-T3: running → waiting (permission prompt)",
            ),
        ),
        connected=connected,
        problem=""
        if connected
        else "the daemon does not answer on /run/user/1000/corral/daemon.sock (connection refused)",
        revision=7,
    )


def sample_state(selected: str = "instance:add-sso-W2-T3", **view: Any) -> State:
    fleet = view.pop("fleet", None) or sample_fleet()
    title = selected.split(":", 1)[1] if selected.startswith("instance:") else ""
    return State(
        fleet=fleet,
        view=View(selected=selected, **view),
        pane=Pane(title=title, screen=SCREEN, diff=DIFF, fetched_at=100.0),
        now=100.0,
        wall=EPOCH,
    )


def with_view(state: State, **changes: Any) -> State:
    return msgspec.structs.replace(state, view=msgspec.structs.replace(state.view, **changes))


def toast(text: str, level: str = "info") -> Toast:
    return Toast(text=text, level=level, until=1e9)  # type: ignore[arg-type]


def big_fleet(n: int = 200) -> Fleet:
    """`n` agents: a third standalone, the rest spread over 20 tasks in 5 topics, every status present."""
    statuses = ("running", "ready", "waiting", "loading", "paused", "exited", "failed")
    tasks = tuple(
        task(
            f"task-{t:02d}",
            ("implementing", "planning", "reviewing", "ready")[t % 4],
            topic=f"topic-{t % 5}",
            waiting=WAVE_QUESTION if t % 7 == 0 else None,
        )
        for t in range(20)
    )
    instances = tuple(
        instance(
            f"agent-{i:03d}",
            statuses[i % len(statuses)],
            task="" if i % 3 == 0 else f"task-{i % 20:02d}",
            created_at=EPOCH + i,
            reason="output changed",
        )
        for i in range(n)
    )
    waves = {t.name: WaveProgress(wave=1, waves=3, done=2, total=4) for t in tasks}
    return Fleet(project="app", tasks=tasks, instances=instances, waves=waves, connected=True)
