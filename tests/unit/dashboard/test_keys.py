"""Every key of the dashboard, as a person would check it: the overlay that opened, the request made (method,
path and body as docs/api.md says), the selection that moved, the toast that explains a key that cannot
apply. `press` runs keys through `keys.handle` and collects the effects, the way the app's loop does."""

from __future__ import annotations

import msgspec
import pytest

from frontends.dashboard import sidebar
from frontends.dashboard.actions import instance_actions, on_reply
from frontends.dashboard.keys import handle
from frontends.dashboard.model import Attach, Call, Copy, Effect, Fleet, Quit, SendKeys, State
from tests.unit.dashboard.fleet_kit import instance, sample_fleet, sample_state, with_view

P = "/v1/repos/app"


def press(state: State, *keys: str) -> tuple[State, list[Effect]]:
    effects: list[Effect] = []
    for key in keys:
        state, more = handle(state, key)
        effects.extend(more)
    return state, effects


def type_text(state: State, text: str) -> State:
    state, effects = press(state, *text)
    assert effects == []
    return state


def calls(effects: list[Effect]) -> list[tuple[str, str, object]]:
    return [(e.method, e.path, e.body) for e in effects if isinstance(e, Call)]


def last_toast(state: State) -> str:
    return state.view.toasts[-1].text if state.view.toasts else ""


def overlay_kind(state: State) -> str | None:
    return state.view.overlay.kind if state.view.overlay else None


# -- moving ---------------------------------------------------------------------------------------------


def test_arrows_move_through_tasks_and_agents_in_drawn_order_skipping_headers() -> None:
    state = sample_state("task:add-sso")
    keys = [r.key for r in sidebar.selectable(sidebar.rows(state.fleet, state.view))]
    seen = [state.view.selected]
    for _ in range(len(keys) + 2):  # two more than there are: it stops at the last
        state, _ = press(state, "KEY_DOWN")
        seen.append(state.view.selected)
    assert seen[: len(keys)] == keys and seen[-1] == keys[-1]
    state, _ = press(state, "KEY_HOME")
    assert state.view.selected == keys[0]
    state, _ = press(state, "KEY_UP")
    assert state.view.selected == keys[0]
    state, _ = press(state, "KEY_END")
    assert state.view.selected == keys[-1]


def test_tab_cycles_agent_diff_info_and_shift_tab_goes_back() -> None:
    state = sample_state()
    tabs = []
    for _ in range(3):
        state, _ = press(state, "\t")
        tabs.append(state.view.tab)
    assert tabs == ["diff", "info", "agent"]
    state, _ = press(state, "KEY_BTAB")
    assert state.view.tab == "info"


def test_page_keys_scroll_the_preview_and_moving_resets_it() -> None:
    state, _ = press(sample_state(), "KEY_PGUP", "KEY_PGUP")
    assert state.view.scroll == 20
    state, _ = press(state, "KEY_PGDOWN")
    assert state.view.scroll == 10
    state, _ = press(state, "KEY_DOWN")
    assert state.view.scroll == 0


# -- attaching, interactive -----------------------------------------------------------------------------


def test_enter_attaches_after_a_one_time_help_overlay() -> None:
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "\r")
    assert overlay_kind(state) == "attach_help" and effects == []
    state, effects = press(state, "x")  # any key goes on
    assert effects == [Attach("add-sso-W2-T1")] and state.view.overlay is None and state.view.attached_once
    state, effects = press(state, "o")
    assert effects == [Attach("add-sso-W2-T1")] and state.view.overlay is None


def test_enter_on_an_sdk_agent_says_why_it_cannot_attach() -> None:
    state, effects = press(sample_state("instance:scratch"), "KEY_ENTER")
    assert effects == [] and "sdk mode" in last_toast(state)


def test_enter_on_a_paused_agent_says_how_to_resume() -> None:
    state, effects = press(sample_state("instance:helper", attached_once=True), "KEY_ENTER")
    assert effects == [] and "r resumes" in last_toast(state)


def test_interactive_mode_forwards_keys_until_ctrl_space() -> None:
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "i")
    assert state.view.interactive and effects == []
    state, effects = press(state, "l", "s", " ", "KEY_ENTER", "KEY_UP", "\x03", "q")
    assert effects == [
        SendKeys("add-sso-W2-T1", (k,)) for k in ("l", "s", "Space", "Enter", "Up", "C-c", "q")
    ]
    assert state.view.interactive  # q went to the agent, not to the dashboard
    state, effects = press(state, "\x00")
    assert not state.view.interactive and effects == []


def test_ctrl_enter_sends_and_leaves_interactive_mode() -> None:
    state, _ = press(sample_state("instance:add-sso-W2-T1"), "i")
    state, effects = press(state, "KEY_CTRL_ENTER")
    assert effects == [SendKeys("add-sso-W2-T1", ("Enter",))] and not state.view.interactive


def test_bang_enters_interactive_mode_and_sends_a_bang() -> None:
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "!")
    assert state.view.interactive and effects == [SendKeys("add-sso-W2-T1", ("!",))]


def test_interactive_mode_is_refused_for_sdk_and_ended_agents() -> None:
    for title in ("scratch", "fix-login-plan"):
        state, effects = press(sample_state(f"instance:{title}"), "i")
        assert not state.view.interactive and effects == [] and "interactive" in last_toast(state)


# -- lifecycle keys -------------------------------------------------------------------------------------


def test_k_asks_then_kills_and_n_cancels() -> None:
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "k")
    assert overlay_kind(state) == "confirm" and effects == []
    cancelled, effects = press(state, "n")
    assert cancelled.view.overlay is None and effects == []
    state, effects = press(state, "y")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T1/kill", None)]
    assert state.view.overlay is None


def test_k_on_an_ended_agent_points_at_delete() -> None:
    state, effects = press(sample_state("instance:fix-login-plan"), "k")
    assert effects == [] and "D deletes" in last_toast(state)


def test_shift_k_pauses_and_r_resumes() -> None:
    _, effects = press(sample_state("instance:add-sso-W2-T1"), "K")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T1/pause", None)]
    _, effects = press(sample_state("instance:helper"), "r")
    assert calls(effects) == [("POST", f"{P}/instances/helper/resume", None)]


def test_r_on_an_ended_agent_restarts_it() -> None:
    _, effects = press(sample_state("instance:fix-login-plan"), "r")
    assert calls(effects) == [("POST", f"{P}/instances/fix-login-plan/restart", None)]


def test_shift_r_asks_before_restarting_a_live_agent() -> None:
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "R")
    assert overlay_kind(state) == "confirm" and effects == []
    _, effects = press(state, "KEY_ENTER")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T1/restart", None)]


def test_c_checks_out_copies_the_branch_and_shows_the_commands_from_the_answer() -> None:
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "c")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T1/checkout", None)]
    assert Copy("corral/add-sso-W2-T1") in effects
    call = next(e for e in effects if isinstance(e, Call))
    state = on_reply(
        state, call, {"branch": "corral/add-sso-W2-T1", "commands": ["git checkout corral/add-sso-W2-T1"]}
    )
    assert overlay_kind(state) == "checkout"
    assert state.view.overlay is not None and state.view.overlay.items == (
        "git checkout corral/add-sso-W2-T1",
    )


def test_e_renames_and_the_selection_follows() -> None:
    state, _ = press(sample_state("instance:scratch"), "e")
    assert overlay_kind(state) == "input" and state.view.overlay is not None
    assert state.view.overlay.text == "scratch"
    state = type_text(state, "-two")
    state, effects = press(state, "KEY_ENTER")
    assert calls(effects) == [("POST", f"{P}/instances/scratch/rename", {"title": "scratch-two"})]
    assert state.view.selected == "instance:scratch-two"


def test_rename_to_a_bad_title_keeps_the_input_open_with_the_reason() -> None:
    state, _ = press(sample_state("instance:scratch"), "e")
    state = type_text(state, "/x")
    state, effects = press(state, "KEY_ENTER")
    assert effects == [] and overlay_kind(state) == "input"
    assert state.view.overlay is not None and "may not contain '/'" in state.view.overlay.lines[0]


def test_p_pushes_and_shift_p_asks_then_creates_a_pull_request() -> None:
    _, effects = press(sample_state("instance:add-sso-W2-T1"), "p")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T1/push", {})]
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "P")
    assert overlay_kind(state) == "confirm" and effects == []
    _, effects = press(state, "y")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T1/pr", {})]


def test_m_marks_a_wave_tasks_agent_complete_by_signal() -> None:
    state, _ = press(sample_state("instance:add-sso-W2-T2"), "m")
    assert overlay_kind(state) == "confirm"
    _, effects = press(state, "y")
    body = {
        "task": "add-sso",
        "signal_type": "implement_task_finished",
        "payload": {"wave_number": 2, "task_number": 2},
    }
    assert calls(effects) == [("POST", f"{P}/signals", body)]


def test_m_on_an_agent_of_no_wave_says_so() -> None:
    state, effects = press(sample_state("instance:scratch"), "m")
    assert effects == [] and "not a wave task" in last_toast(state)


def test_shift_d_deletes_an_ended_agent_after_asking_and_refuses_a_running_one() -> None:
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "D")
    assert effects == [] and state.view.overlay is None and "kill it first" in last_toast(state)
    state, _ = press(sample_state("instance:fix-login-plan"), "D")
    assert overlay_kind(state) == "confirm"
    _, effects = press(state, "y")
    assert calls(effects) == [("DELETE", f"{P}/instances/fix-login-plan", None)]


def test_y_answers_a_waiting_agents_prompt_and_only_a_waiting_one() -> None:
    _, effects = press(sample_state("instance:add-sso-W2-T3"), "y")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T3/send", {"text": "yes", "enter": True})]
    state, effects = press(sample_state("instance:add-sso-W2-T1"), "y")
    assert effects == [] and "not waiting" in last_toast(state)


def test_titles_are_percent_encoded_in_paths() -> None:
    fleet = msgspec.structs.replace(sample_fleet(), instances=(instance("x@{1} y", "running"),))
    state = sample_state("instance:x@{1} y", fleet=fleet)
    _, effects = press(state, "K")
    assert calls(effects) == [("POST", f"{P}/instances/x%40%7B1%7D%20y/pause", None)]


# -- creating -------------------------------------------------------------------------------------------


def test_n_creates_a_task_from_a_name_and_a_brief() -> None:
    state, _ = press(sample_state(), "n")
    state = type_text(state, "Bad Name")
    state, effects = press(state, "KEY_ENTER")
    assert (
        effects == []
        and state.view.overlay is not None
        and "invalid task name" in state.view.overlay.lines[0]
    )
    state, _ = press(state, *["KEY_BACKSPACE"] * 8)
    state = type_text(state, "rate-limit")
    state, _ = press(state, "KEY_ENTER")
    state = type_text(state, "Limit login attempts")
    state, effects = press(state, "KEY_ENTER")
    body = {"name": "rate-limit", "title": "Limit login attempts", "content": "Limit login attempts\n"}
    assert calls(effects) == [("POST", f"{P}/tasks", body)]
    assert state.view.selected == "task:rate-limit" and state.view.overlay is None


def test_shift_n_starts_a_standalone_agent_with_a_prompt() -> None:
    state, _ = press(sample_state("task:add-sso"), "N")
    assert state.view.overlay is not None and state.view.overlay.text == "agent"
    state, _ = press(state, "KEY_ENTER")
    state = type_text(state, "tidy the README")
    state, effects = press(state, "KEY_ENTER")
    assert calls(effects) == [
        ("POST", f"{P}/instances", {"title": "agent", "mode": "tmux", "prompt": "tidy the README"})
    ]
    assert state.view.selected == "instance:agent"


def test_s_on_a_task_spawns_an_agent_for_it() -> None:
    state, _ = press(sample_state("task:add-sso"), "s")
    assert state.view.overlay is not None and state.view.overlay.text == "add-sso-agent"
    state, effects = press(state, "KEY_ENTER", "KEY_ENTER")
    assert calls(effects) == [
        ("POST", f"{P}/instances", {"title": "add-sso-agent", "mode": "tmux", "task": "add-sso"})
    ]


def test_spawn_refuses_a_title_that_is_taken() -> None:
    state, _ = press(sample_state(), "N")
    state, _ = press(state, *["KEY_BACKSPACE"] * 5)
    state = type_text(state, "scratch")
    state, effects = press(state, "KEY_ENTER")
    assert (
        effects == [] and state.view.overlay is not None and "already exists" in state.view.overlay.lines[0]
    )


def test_shift_s_picks_the_mode_first_sdk_fast_is_codex() -> None:
    state, _ = press(sample_state("instance:scratch"), "S")
    assert overlay_kind(state) == "picker"
    state, _ = press(state, "KEY_DOWN", "KEY_DOWN", "KEY_DOWN", "KEY_ENTER")
    assert overlay_kind(state) == "input"
    state, effects = press(state, "KEY_ENTER", "KEY_ENTER")
    assert calls(effects) == [
        ("POST", f"{P}/instances", {"title": "agent", "mode": "sdk-fast", "program": "codex"})
    ]


def test_esc_cancels_an_input_without_a_request() -> None:
    state, _ = press(sample_state(), "n")
    state, effects = press(state, "a", "\x1b")
    assert state.view.overlay is None and effects == []


# -- menus and wave decisions ---------------------------------------------------------------------------


def test_space_opens_the_instance_menu_with_what_applies() -> None:
    state, _ = press(sample_state("instance:add-sso-W2-T3"), " ")
    assert overlay_kind(state) == "menu" and state.view.overlay is not None
    items = state.view.overlay.items
    assert (
        items[:3] == ("open", "focus", "yes")
        and "kill" in items
        and "delete" not in items
        and "mark" in items
    )
    ended = instance_actions(instance("done", "exited"))
    assert "delete" in ended and "kill" not in ended and "open" not in ended


def test_a_menu_entry_does_what_its_key_does() -> None:
    state, _ = press(sample_state("instance:add-sso-W2-T1"), " ")
    assert state.view.overlay is not None
    steps = state.view.overlay.items.index("pause")
    state, effects = press(state, *["KEY_DOWN"] * steps, "KEY_ENTER")
    assert calls(effects) == [("POST", f"{P}/instances/add-sso-W2-T1/pause", None)]


def test_wave_decisions_from_the_task_row_retry_next_wave_cancel() -> None:
    state, _ = press(sample_state("task:add-sso"), "KEY_ENTER")
    assert overlay_kind(state) == "menu" and state.view.overlay is not None
    items = state.view.overlay.items
    assert items[:2] == ("signal:retry_wave", "signal:advance_wave")
    _, effects = press(state, "KEY_ENTER")
    assert calls(effects) == [("POST", f"{P}/signals", {"task": "add-sso", "signal_type": "retry_wave"})]
    _, effects = press(state, "KEY_DOWN", "KEY_ENTER")
    assert calls(effects) == [("POST", f"{P}/signals", {"task": "add-sso", "signal_type": "advance_wave"})]
    state, effects = press(state, *["KEY_DOWN"] * items.index("transition:cancel"), "KEY_ENTER")
    assert overlay_kind(state) == "confirm" and effects == []
    _, effects = press(state, "y")
    assert calls(effects) == [("POST", f"{P}/tasks/add-sso/transition", {"event": "cancel"})]


def test_the_task_menu_offers_the_lifecycle_events_of_its_status() -> None:
    state, _ = press(sample_state("task:fix-login"), " ")
    assert state.view.overlay is not None
    assert state.view.overlay.items[:3] == (
        "transition:plan_start",
        "transition:implement_start",
        "transition:cancel",
    )
    _, effects = press(state, "KEY_ENTER")
    assert calls(effects) == [("POST", f"{P}/tasks/fix-login/transition", {"event": "plan_start"})]


def test_view_plan_asks_for_the_task_and_shows_its_content() -> None:
    state, _ = press(sample_state("task:fix-login"), " ")
    assert state.view.overlay is not None
    state, effects = press(state, *["KEY_DOWN"] * state.view.overlay.items.index("view_plan"), "KEY_ENTER")
    assert calls(effects) == [("GET", f"{P}/tasks/fix-login", None)] and overlay_kind(state) == "plan"
    call = next(e for e in effects if isinstance(e, Call))
    state = on_reply(state, call, {"name": "fix-login", "content": "# Fix the login form\n\n## Wave 1\n"})
    assert state.view.overlay is not None and state.view.overlay.items[0] == "# Fix the login form"


# -- orphans, tree, audit, help -------------------------------------------------------------------------


def test_shift_t_browses_orphans_adopt_attach_kill() -> None:
    state, _ = press(sample_state(), "T")
    assert overlay_kind(state) == "tmux"
    _, effects = press(state, "KEY_ENTER")
    assert effects == [Attach("", session="corral_app_old")]
    adopting, _ = press(state, "a")
    assert overlay_kind(adopting) == "input"
    _, effects = press(adopting, *"old", "KEY_ENTER")
    assert calls(effects) == [("POST", f"{P}/orphans/corral_app_old/adopt", {"title": "old"})]
    killing, effects = press(state, "k")
    assert overlay_kind(killing) == "confirm" and effects == []
    _, effects = press(killing, "y")
    assert calls(effects) == [("POST", "/v1/orphans/corral_app_old/kill", None)]


def test_t_opens_the_supervision_tree_and_esc_closes_it() -> None:
    state, _ = press(sample_state(), "t")
    assert overlay_kind(state) == "tree"
    state, _ = press(state, "KEY_ESCAPE")
    assert state.view.overlay is None


def test_shift_l_toggles_the_audit_pane() -> None:
    state, _ = press(sample_state(), "L")
    assert state.view.audit_open
    state, _ = press(state, "L")
    assert not state.view.audit_open


def test_question_mark_opens_help_which_scrolls_and_closes() -> None:
    state, _ = press(sample_state(), "?")
    assert overlay_kind(state) == "help"
    state, _ = press(state, "KEY_DOWN", "KEY_DOWN")
    assert state.view.overlay is not None and state.view.overlay.cursor == 2
    state, _ = press(state, "?")
    assert state.view.overlay is None


# -- filter, sort, search -------------------------------------------------------------------------------


def test_two_shows_active_agents_only_and_one_all_again() -> None:
    state, _ = press(sample_state("instance:helper"), "2")
    shown = {r.key for r in sidebar.rows(state.fleet, state.view)}
    assert "instance:helper" not in shown and "instance:fix-login-plan" not in shown
    assert "instance:add-sso-W2-T1" in shown
    assert state.view.selected in shown  # the selection moved off the hidden row
    state, _ = press(state, "1")
    assert "instance:helper" in {r.key for r in sidebar.rows(state.fleet, state.view)}


def test_three_cycles_the_sort_status_name_created() -> None:
    state = sample_state()
    sorts = []
    for _ in range(3):
        state, _ = press(state, "3")
        sorts.append(state.view.sort)
    assert sorts == ["name", "created", "status"]
    state, _ = press(state, "3")
    agents = [r.label for r in sidebar.rows(state.fleet, state.view) if r.kind == "instance" and r.depth == 0]
    assert agents == ["codex-fast", "helper", "scratch"]


def test_slash_searches_by_title_or_task_enter_keeps_esc_clears() -> None:
    state, _ = press(sample_state(), "/")
    assert state.view.searching
    state, _ = press(state, *"login")
    labels = [r.label for r in sidebar.rows(state.fleet, state.view) if r.key]
    assert labels == ["fix-login", "fix-login-plan"]
    assert state.view.selected == "task:fix-login"
    state, _ = press(state, "KEY_ENTER")
    assert not state.view.searching and state.view.search == "login"
    state, _ = press(state, "k")  # a dashboard key again, not search text
    assert state.view.search == "login"
    state, _ = press(state, "\x1b")
    assert state.view.search == ""


# -- quitting -------------------------------------------------------------------------------------------


def test_q_asks_while_agents_run_then_quits() -> None:
    state, effects = press(sample_state(), "q")
    assert overlay_kind(state) == "confirm" and effects == []
    _, effects = press(state, "y")
    assert effects == [Quit()]
    _, effects = press(state, "KEY_ESCAPE")
    assert effects == []


def test_q_quits_at_once_when_no_agent_runs() -> None:
    fleet = Fleet(project="app", instances=(instance("old", "exited"),), connected=True)
    _, effects = press(State(fleet=fleet), "q")
    assert effects == [Quit()]
    _, effects = press(State(fleet=fleet), "\x03")
    assert effects == [Quit()]


@pytest.mark.parametrize("key", ["k", "K", "r", "R", "c", "e", "p", "P", "D", "y", "i", "o"])
def test_an_agent_key_with_no_agent_selected_says_so(key: str) -> None:
    state = with_view(State(fleet=Fleet(project="app", connected=True)), selected="")
    state, effects = press(state, key)
    assert effects == [] and "select an agent first" in last_toast(state)


def test_interactive_mode_ends_when_the_agent_ends() -> None:
    state, _ = press(sample_state("instance:add-sso-W2-T1"), "i")
    ended = tuple(
        msgspec.structs.replace(i, status="exited") if i.title == "add-sso-W2-T1" else i
        for i in state.fleet.instances
    )
    state = msgspec.structs.replace(state, fleet=msgspec.structs.replace(state.fleet, instances=ended))
    state, effects = press(state, "x")
    assert effects == [] and not state.view.interactive and "exited" in last_toast(state)
