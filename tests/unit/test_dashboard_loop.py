"""The dashboard's loop and bridge, their pure parts: what a key is called, which notifications an event
deserves, what the bridge is asked to fetch, what reaches the terminal."""

from __future__ import annotations

import io
import queue

import msgspec
import pytest

from frontends.dashboard.app import Painter, colors_of, focus_of, key_name
from frontends.dashboard.attach import attach_env, detach_bindings
from frontends.dashboard.bridge import Focus, Notice, diff_text, notice_of, offer, task_notices
from frontends.dashboard.effects import key_requests, osc52
from frontends.dashboard.model import Fleet, Overlay, State, View
from tests.unit.dashboard.fleet_kit import instance, task


def test_a_queue_of_one_keeps_the_latest_and_never_blocks() -> None:
    box: queue.Queue[int] = queue.Queue(maxsize=1)
    for n in range(5):
        offer(box, n)
    assert box.get_nowait() == 4 and box.empty()


@pytest.mark.parametrize(
    ("key", "name", "sequence", "expected"),
    [
        ("\x1b[A", "KEY_UP", True, "KEY_UP"),
        ("\r", "KEY_ENTER", True, "KEY_ENTER"),
        ("\x1b", "KEY_ESCAPE", True, "KEY_ESCAPE"),
        ("k", None, False, "k"),
        ("\x11", "KEY_CTRL_Q", False, "\x11"),  # ctrl-q is the character, whatever blessed calls it
        ("\x00", "KEY_CTRL_SPACE", False, "\x00"),
    ],
)
def test_key_names_are_what_keys_handle_expects(
    key: str, name: str | None, sequence: bool, expected: str
) -> None:
    assert key_name(key, name, sequence) == expected


def test_colours_degrade_from_256_to_16_to_none() -> None:
    assert [colors_of(n) for n in (16_777_216, 256, 88, 16, 8, 2, 0, -1)] == [256, 256, 16, 16, 16, 0, 0, 0]


def test_notifications_for_waiting_failed_and_done_of_this_project_only() -> None:
    waiting = {"type": "instance_status_changed", "project": "p", "instance": "a", "status": "waiting",
               "previous": "running", "reason": "a permission prompt"}  # fmt: skip
    assert notice_of(waiting, "p") == Notice("a waits for you: a permission prompt", "warn")
    assert notice_of(waiting, "other") is None
    assert notice_of({**waiting, "previous": "waiting"}, "p") is None  # no news
    failed = {**waiting, "status": "failed", "reason": "exit status 3"}
    assert notice_of(failed, "p") == Notice("a failed: exit status 3", "error")
    assert notice_of({**waiting, "status": "ready"}, "p") is None
    done = {"type": "task_transitioned", "project": "p", "task": "t", "to_status": "done"}
    assert notice_of(done, "p") == Notice("task t is done")
    assert notice_of({**done, "to_status": "reviewing"}, "p") is None


def test_the_bridge_is_asked_for_what_the_view_shows() -> None:
    assert focus_of(State(fleet=Fleet(project="p"))) == Focus()
    fleet = Fleet(project="p", instances=(instance("first"), instance("fix-login")), tasks=(task("auth"),))
    view = View(selected="instance:fix-login", tab="diff", audit_open=True, overlay=Overlay(kind="tmux"))
    assert focus_of(State(fleet=fleet, view=view)) == Focus(
        title="fix-login", tab="diff", audit=True, orphans=True
    )
    info = View(selected="instance:fix-login", tab="info")
    assert focus_of(State(fleet=fleet, view=info)) == Focus(title="fix-login", tab="info", tree=True)
    task_row = View(selected="task:auth", overlay=Overlay(kind="tree"), interactive=True)
    assert focus_of(State(fleet=fleet, view=task_row)) == Focus(tree=True, interactive=True)
    # nothing chosen yet: the row the sidebar shows selected, the first one
    only_agents = Fleet(project="p", instances=(instance("first"), instance("fix-login")))
    assert focus_of(State(fleet=only_agents)).title == "first"


def test_the_painter_writes_only_the_lines_that_changed() -> None:
    out = io.StringIO()
    painter = Painter(out, lambda y, x: f"<{y},{x}>")
    assert painter.paint(["a", "b", "c"]) == 3
    out.truncate(0), out.seek(0)
    assert painter.paint(["a", "B", "c"]) == 1
    assert "<1,0>B" in out.getvalue() and "a" not in out.getvalue().replace("\x1b[?2026", "")
    assert painter.paint(["a", "B", "c"]) == 0
    painter.invalidate()
    assert painter.blank and painter.paint(["a", "B", "c"]) == 3


def test_copy_is_osc_52() -> None:
    assert osc52("corral/fix-login") == "\x1b]52;c;Y29ycmFsL2ZpeC1sb2dpbg==\a"


def test_attach_detaches_with_ctrl_q_on_corrals_server_and_nests_inside_the_persons_tmux() -> None:
    assert detach_bindings(("tmux", "-L", "corral")) == [
        ["tmux", "-L", "corral", "bind-key", "-n", "C-q", "detach-client"],
        ["tmux", "-L", "corral", "bind-key", "-n", "C-Space", "detach-client"],
    ]
    env = attach_env({"TMUX": "/tmp/tmux-0/default,1,0", "TMUX_PANE": "%1", "TERM": "screen", "HOME": "/h"})
    assert env == {"TERM": "screen", "HOME": "/h"}


def test_typed_keys_go_as_send_keys_in_order_never_as_send_which_clears_the_line() -> None:
    assert key_requests(("a", " ", ";", "#", "Enter")) == [
        ("send-keys", {"keys": ["a", "Space", ";", "#", "Enter"]})
    ]
    assert key_requests(()) == []


def test_the_diff_tab_shows_the_stat_the_patch_and_says_when_it_was_cut() -> None:
    assert diff_text({"stat": "", "diff": ""}) == ""  # no changes: the renderer says so
    answer = {"stat": " a.txt | 1 +\n", "diff": "+hi\n", "base": "abc123", "worktree": "/w"}
    assert diff_text(answer) == " a.txt | 1 +\n\n+hi"
    cut = diff_text({**answer, "truncated": True, "limit_bytes": 1000})
    assert cut.endswith("… cut at 1000 bytes; the whole diff: git -C /w diff abc123")


def test_a_task_that_begins_to_wait_for_a_person_is_notified_once() -> None:
    from protocols.records import TaskWaiting

    decision = TaskWaiting(reason="wave 1 failed; retry?", kind="wave_decision", since="2026-12-08T02:00:00Z")
    calm, asking = task("notes"), msgspec.structs.replace(task("notes"), waiting=decision)
    assert task_notices((calm,), (asking,)) == [
        Notice("task notes waits for you: wave 1 failed; retry?", "warn")
    ]
    assert task_notices((asking,), (asking,)) == []  # still the same question: said already
    again = msgspec.structs.replace(decision, since="2026-12-08T02:05:00Z")
    assert len(task_notices((asking,), (msgspec.structs.replace(calm, waiting=again),))) == 1  # a new one
    agent = msgspec.structs.replace(calm, waiting=TaskWaiting(reason="its agent waits", kind="agent_waiting"))
    assert task_notices((calm,), (agent,)) == []  # the agent's own notice says it
