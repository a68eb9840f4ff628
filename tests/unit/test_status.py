"""protocols.status: statuses from evidence, debounced, each with its reason; what is answered by itself."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import status as status_module
from protocols.harness import BUILTIN_HARNESSES, Harness, get_harness
from protocols.sdk import (
    RATE_LIMITED,
    UNREACHABLE,
    AgentText,
    Approval,
    SdkError,
    SessionStarted,
    TurnCompleted,
    TurnStarted,
)
from protocols.status import (
    ANSWER_HOLD_S,
    MAX_ANSWER_TRIES,
    AgentStatus,
    Decision,
    Evidence,
    PermissionPolicy,
    StatusChange,
    TrackerState,
    auto_answer,
    decide,
    read_screen,
    strip_ansi,
)

SIM = get_harness("sim")
CLAUDE = get_harness("claude")
S = AgentStatus
RED, DIM, BOLD, OFF = "\x1b[31m", "\x1b[2m", "\x1b[1m", "\x1b[0m"

# --- screens, as tmux captures them (ANSI, trailing spaces and all) ----------------------------------------

SIM_BANNER = f"{BOLD}corral-sim 0.1.0 — simulated coding agent{OFF}   \n\n"
SIM_TRUST = (
    SIM_BANNER + "Do you trust the files in this folder?\n\x1b[36m❯ 1. Yes, proceed\x1b[0m\n  2. No, exit\n"
)
SIM_IDLE = SIM_BANNER + "> \n" + f"{DIM}? for shortcuts{OFF}\n\n\n"
SIM_TYPED = SIM_BANNER + "> fix the login bug\n" + f"{DIM}? for shortcuts{OFF}\n"


def sim_working(glyph: str) -> str:
    return SIM_BANNER + "> fix the login bug\n" + f"\x1b[33m{glyph}\x1b[0m Working… (esc to interrupt)   \n"


def sim_done(extra: str = "") -> str:
    return SIM_BANNER + "> fix the login bug\nEdited src/login.py: compare tokens with ==\n" + extra + "> \n"


SIM_PERMISSION = (
    sim_working("✻")
    + "Do you want to make this edit to src/login.py?\n"
    + "\x1b[36m❯ 1. Yes\x1b[0m\n"
    + "  2. Yes, allow all edits during this session\n"
    + "  3. No, and tell Claude what to do differently (esc)\n"
)
SIM_QUESTION = sim_working("✶") + "Would you like to proceed? (Y)es/(N)o\n"
SIM_COMMAND = (
    SIM_BANNER
    + "> run the tests\n⏺ Bash(npm test)\n"
    + "Bash command: npm test\nDo you want to proceed?\n"
    + "❯ 1. Yes\n  2. Yes, and don't ask again for commands during this session\n"
    + "  3. No, and tell Claude what to do differently (esc)\n"
)

BOX = "─" * 50


def claude_screen(middle: str, clock: str = "14:02:07", footer: str = "? for shortcuts") -> str:
    """Claude Code's full-screen layout: header, transcript, the input box, a footer."""
    return (
        f"{DIM} claude · opus · {clock} {OFF}\n"
        "> fix the login bug\n\n"
        "⏺ I'll look at src/login.py.\n\n"
        f"{middle}"
        f"\x1b[38;5;244m╭{BOX}╮\x1b[39m\n"
        f"│ >{' ' * 48}│\n"
        f"╰{BOX}╯\n"
        f"  {DIM}{footer}{OFF}        \n"
    )


def claude_working(glyph: str, seconds: int) -> str:
    return claude_screen(
        f"\x1b[38;5;174m{glyph}\x1b[39m Cultivating… ({seconds}s · ↑ 1.2k tokens · esc to interrupt)\n\n"
    )


CLAUDE_IDLE = claude_screen("⏺ Fixed: the token was compared with `is`.\n\n")
CLAUDE_PERMISSION = (
    "⏺ Update(src/login.py)\n\n"
    f"╭{BOX}╮\n"
    "│ Edit file                                        │\n"
    "│   12 -    if token is session.token:             │\n"
    "│   12 +    if token == session.token:             │\n"
    "│ Do you want to make this edit to login.py?       │\n"
    "│ \x1b[36m❯ 1. Yes\x1b[39m                                         │\n"
    "│   2. Yes, and don't ask again this session        │\n"
    "│   3. No, and tell Claude what to do differently (esc) │\n"
    f"╰{BOX}╯\n"
)
CLAUDE_TRUST = (
    f"╭{BOX}╮\n│ Do you trust the files in this folder?            │\n"
    "│ /home/me/proj/.worktrees/fix-login                │\n"
    "│ ❯ 1. Yes, proceed                                 │\n"
    f"│   2. No, exit                                     │\n╰{BOX}╯\n   Enter to confirm · Esc to exit\n"
)
GEMINI_PERMISSION = (
    "╭──────────────────────────────────────────╮\n"
    "│ ?  Shell npm test                        │\n"
    "│ Allow execution of: 'npm'?               │\n"
    "│ ● 1. Yes, allow once                     │\n"
    "│   2. Yes, allow always                   │\n"
    "│   3. No, suggest changes (esc)           │\n"
    "╰──────────────────────────────────────────╯\n"
)
GEMINI_OPTIONS_ONLY = (
    "│ ● 1. Yes, allow once                     │\n│   2. Yes, allow always                   │\n"
)
CODEX_IDLE = (
    "╭───────────────────────────────────────────╮\n"
    "│ >_ OpenAI Codex (v0.58.0)                 │\n"
    "╰───────────────────────────────────────────╯\n\n"
    "› Ask Codex to do anything\n\n"
    "  ? for shortcuts                              100% context left\n"
)
CODEX_APPROVAL = (
    "› fix the failing test\n\n• Running pnpm test\n\n"
    "  Would you like to run the following command?\n\n"
    "  Reason: the tests need network access\n\n  $ pnpm test\n\n"
    "› 1. Yes, proceed (y)\n"
    "  2. Yes, and don't ask again for commands that start with `pnpm test` (p)\n"
    "  3. No, and tell Codex what to do differently (esc)\n\n"
    "  Press enter to confirm or esc to cancel\n"
)
AIDER_IDLE = (
    "Aider v0.86.1\nMain model: anthropic/claude-sonnet-4 with diff edit format\n"
    "Repo-map: using 4096 tokens, auto refresh\n" + "─" * 60 + "\n> \n"
)
AIDER_SHELL = AIDER_IDLE[:-3] + "\nnpm test\nRun shell command? (Y)es/(N)o/(D)on't ask again [Yes]: \n"
AIDER_DOCS = (
    "Model warning: unknown context window\n"
    "Open documentation url for more info? (Y)es/(N)o/(D)on't ask again [Yes]: "
)
AIDER_ADD_FILE = "> fix login\nsrc/login.py\nAdd file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: "


class Agent:
    """Feeds evidence to `decide` the way an Instance would, keeping the state and every decision."""

    def __init__(
        self, harness: Harness, t0: float = 0.0, **policy: object
    ) -> None:  # policy: decide's kwargs
        self.harness, self.now = harness, t0
        self.state = TrackerState.start(t0)
        self.policy = policy
        self.decisions: list[Decision] = []

    def see(self, at: float, screen: str | None = None, **evidence: object) -> Decision:
        self.now = at
        d = decide(self.state, Evidence(screen=screen, **evidence), self.harness, at, **self.policy)  # type: ignore[arg-type]
        self.state = d.state
        self.decisions.append(d)
        return d

    def tick_until(self, until: float) -> None:
        """Run the wake-ups `decide` asked for, up to `until`, as a scheduler would."""
        while (wake := self.decisions[-1].wake_at) is not None and wake <= until:
            self.see(wake)

    @property
    def status(self) -> AgentStatus:
        return self.state.status

    @property
    def changes(self) -> list[StatusChange]:
        return [d.change for d in self.decisions if d.change is not None]


def statuses(agent: Agent) -> list[tuple[AgentStatus, str]]:
    return [(c.status, c.reason) for c in agent.changes]


def frames(seq: Iterable[str], start: float, step: float) -> Iterable[tuple[float, str]]:
    for i, screen in enumerate(seq):
        yield start + i * step, screen


def test_public_names_are_pinned() -> None:
    assert sorted(status_module.__all__) == sorted(
        [
            "ANSWER_HOLD_S",
            "MAX_ANSWER_TRIES",
            "AgentStatus",
            "Decision",
            "Evidence",
            "LivePrompt",
            "PermissionPolicy",
            "ScreenReading",
            "StatusChange",
            "TrackerState",
            "auto_answer",
            "decide",
            "last_words",
            "read_screen",
            "strip_ansi",
        ]
    )


def test_the_statuses() -> None:
    assert [s.value for s in AgentStatus] == [
        "loading",
        "running",
        "ready",
        "waiting",
        "exited",
        "failed",
        "paused",
    ]


# --- strip_ansi --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("\x1b[1;31mred\x1b[0m", "red"),
        ("\x1b[38;5;174m✻\x1b[39m Working…", "✻ Working…"),
        ("\x1b[38;2;10;20;30mtrue colour\x1b[m", "true colour"),
        ("a\x1b[2Kb\x1b[1;1Hc\x1b[?25l\x1b[?2026h", "abc"),
        ("\x1b]0;claude: fix\x07title gone", "title gone"),
        ("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1b(Bascii\x1b)0", "ascii"),
        ("\x1b=keypad\x1b>", "keypad"),
        ("\x9b31mC1 CSI\x9b0m", "C1 CSI"),
        ("bell\x07 and \x00nul", "bell and nul"),
        ("keep\ttabs\nand\r\nnewlines", "keep\ttabs\nand\r\nnewlines"),
        ("lone \x1b escape", "lone  escape"),
    ],
)
def test_strip_ansi(raw: str, plain: str) -> None:
    assert strip_ansi(raw) == plain


# --- reading screens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("harness", "screen", "ready", "kind", "text"),
    [
        ("sim", SIM_IDLE, True, None, ""),
        ("sim", SIM_TYPED, True, None, ""),
        ("sim", SIM_TRUST, False, "start", "Do you trust the files in this folder?"),
        ("sim", SIM_PERMISSION, False, "permission", "Do you want to make this edit to src/login.py?"),
        ("sim", SIM_QUESTION, False, "question", "Would you like to proceed? (Y)es/(N)o"),
        ("sim", SIM_COMMAND, False, "permission", "Bash command: npm test"),
        ("sim", sim_working("✢"), False, None, ""),
        ("claude", CLAUDE_IDLE, True, None, ""),
        ("claude", claude_working("✻", 3), True, None, ""),
        ("claude", CLAUDE_PERMISSION, False, "permission", "Do you want to make this edit to login.py?"),
        ("claude", CLAUDE_TRUST, False, "start", "Do you trust the files in this folder?"),
        ("gemini", GEMINI_PERMISSION, False, "permission", "Allow execution of: 'npm'?"),
        ("gemini", GEMINI_OPTIONS_ONLY, False, "permission", "● 1. Yes, allow once"),
        ("codex", CODEX_IDLE, True, None, ""),
        ("codex", CODEX_APPROVAL, False, "permission", "Would you like to run the following command?"),
        ("aider", AIDER_IDLE, True, None, ""),
        ("aider", AIDER_SHELL, False, "permission", "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]:"),
        (
            "aider",
            AIDER_DOCS,
            False,
            "start",
            "Open documentation url for more info? (Y)es/(N)o/(D)on't ask again [Yes]:",
        ),
        (
            "aider",
            AIDER_ADD_FILE,
            False,
            "question",
            "Add file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]:",
        ),
    ],
)
def test_read_screen(harness: str, screen: str, ready: bool, kind: str | None, text: str) -> None:
    reading = read_screen(get_harness(harness), screen)
    assert reading.ready is ready
    assert (reading.prompt.kind, reading.prompt.text) == (kind, text) if reading.prompt else kind is None


def test_a_prompt_answered_and_left_above_the_ready_prompt_is_history() -> None:
    answered = SIM_PERMISSION + "Edited src/login.py\n> \n? for shortcuts\n"
    reading = read_screen(SIM, answered)
    assert reading.ready and reading.prompt is None


def test_input_echoed_above_a_working_line_is_not_a_ready_prompt() -> None:
    reading = read_screen(SIM, sim_working("✳"))
    assert not reading.ready
    assert (reading.working, reading.working_label) == ("✳ Working… (esc to interrupt)", "esc to interrupt")


def test_claudes_spinner_counts_while_the_input_box_stays_visible() -> None:
    reading = read_screen(CLAUDE, claude_working("✶", 12))
    assert reading.ready
    assert reading.working_label == "esc to interrupt"


def test_claudes_done_summary_is_not_a_working_indicator() -> None:
    assert read_screen(CLAUDE, claude_screen("✻ Worked for 12s\n\n")).working == ""


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (claude_screen("", clock="14:02:07"), claude_screen("", clock="14:02:08")),
        (claude_working("✢", 3), claude_working("✽", 4)),
        (
            claude_screen("", footer="? for shortcuts"),
            claude_screen("", footer="⏵⏵ accept edits on (shift+tab to cycle)"),
        ),
        (SIM_IDLE, SIM_TYPED),  # what a person types at the prompt
        (SIM_IDLE, SIM_IDLE.replace("? for shortcuts", "")),
        ("build took 3.2s\n> ", "build took 4.9s\n> "),
        ("Tokens: 4.2k tokens sent\n> ", "Tokens: 5.1k tokens sent\n> "),
        ("x  \n\n> ", "\x1b[1mx\x1b[0m\n> "),
    ],
)
def test_what_changes_by_itself_is_not_a_meaningful_change(a: str, b: str) -> None:
    harness = CLAUDE if "╭" in a else SIM
    assert read_screen(harness, a).content_hash == read_screen(harness, b).content_hash


def test_new_output_is_a_meaningful_change() -> None:
    assert (
        read_screen(SIM, sim_done()).content_hash != read_screen(SIM, sim_done("Ran 12 tests\n")).content_hash
    )


# --- the life of an agent ----------------------------------------------------------------------------------


def test_start_trust_screen_dismissed_then_ready_after_the_settle() -> None:
    agent = Agent(SIM)
    d = agent.see(0.2, SIM_TRUST)
    assert (agent.status, agent.state.reason) == (S.LOADING, "start screen: trust screen")
    assert (d.keys, d.keys_reason) == (("Enter",), "trust screen dismissed")
    agent.see(0.5, SIM_IDLE)
    assert agent.status is S.LOADING  # the prompt is up, the screen not yet still
    agent.tick_until(10)
    assert statuses(agent) == [(S.READY, "prompt visible, no change for 3 s")]
    assert agent.changes[0].previous is S.LOADING
    assert agent.changes[0].at == pytest.approx(3.5)


def test_an_adopted_idle_agent_is_ready_at_its_first_reading() -> None:
    agent = Agent(SIM, t0=100.0)
    agent.see(100.05, SIM_IDLE, quiet_since=40.0)  # its pane last wrote a minute before the adoption
    assert statuses(agent) == [(S.READY, "prompt visible, no change for 60 s")]


def test_an_adopted_agent_that_wrote_just_now_still_waits_out_the_settle() -> None:
    agent = Agent(SIM, t0=100.0)
    agent.see(100.05, SIM_IDLE, quiet_since=99.5)
    assert agent.status is S.LOADING
    agent.tick_until(110)
    assert statuses(agent) == [(S.READY, "prompt visible, no change for 3 s")]
    assert agent.changes[0].at == pytest.approx(102.5)


def test_a_start_screen_is_dismissed_again_only_after_a_hold_and_at_most_three_times() -> None:
    agent = Agent(SIM)
    sent = [agent.see(t / 2, SIM_TRUST).keys for t in range(20)]
    assert sent.count(("Enter",)) == MAX_ANSWER_TRIES
    assert sent[0] == ("Enter",) and sent[1] == ()
    assert sent[int(ANSWER_HOLD_S * 2)] == ("Enter",)


def test_an_agent_frozen_on_its_start_screen_waits_for_a_person_instead_of_loading_for_ever() -> None:
    """Seen in a chaos campaign: a PTY agent stopped (SIGSTOP) on its trust screen stayed "loading" for good.
    Once its answers are spent and the screen has not changed for the harness's quiet limit, it waits."""
    agent = Agent(SIM)
    for t in range(0, 4 * int(SIM.quiet_unknown_s) + 1):
        agent.see(float(t), SIM_TRUST)
    agent.tick_until(8 * SIM.quiet_unknown_s)
    assert agent.status is S.WAITING, statuses(agent)
    assert agent.state.reason.startswith("start screen: trust screen"), agent.state.reason
    assert "still there" in agent.state.reason or "may be hung" in agent.state.reason


def test_a_start_screen_still_being_answered_is_loading_not_waiting() -> None:
    agent = Agent(SIM)
    agent.see(0.2, SIM_TRUST)
    agent.tick_until(min(SIM.start_timeout_s, SIM.quiet_unknown_s) - 0.5)
    assert (agent.status, agent.state.reason) == (S.LOADING, "start screen: trust screen")


def test_an_idle_agent_with_a_clock_ticking_stays_ready() -> None:
    agent = Agent(CLAUDE)
    for t in range(0, 60):
        clock = f"14:{t // 60:02d}:{t % 60:02d}"
        agent.see(
            float(t), claude_screen("⏺ Fixed it.\n\n", clock=clock, footer=f"? for shortcuts · {clock}")
        )
    assert statuses(agent) == [(S.READY, "prompt visible, no change for 3 s")]


def test_a_clock_ticking_does_not_hold_off_ready_after_work() -> None:
    agent = Agent(CLAUDE)
    for i, t in enumerate(range(0, 10)):
        agent.see(float(t), claude_working("✢✳✶✻✽"[i % 5], t))
    for t in range(10, 20):
        agent.see(float(t), claude_screen("⏺ Fixed it.\n\n", clock=f"14:02:{t:02d}"))
    assert [s for s, _ in statuses(agent)] == [S.RUNNING, S.READY]
    assert agent.changes[-1].at == 13.0


def test_claudes_spinner_cycling_keeps_it_running_without_a_flap() -> None:
    agent = Agent(CLAUDE)
    for i in range(40):  # a capture every half second for 20 s, glyph and timer moving
        agent.see(i * 0.5, claude_working("✢✳✶✻✽"[i % 5], i // 2))
    assert statuses(agent) == [(S.RUNNING, "working: esc to interrupt visible")]


def test_the_sims_spinner_cycling_keeps_it_running() -> None:
    agent = Agent(SIM)
    for t, screen in frames((sim_working(g) for g in "✢✳✶✻✽" * 6), 0.0, 0.7):
        agent.see(t, screen)
    agent.tick_until(60)
    assert statuses(agent) == [(S.RUNNING, "working: esc to interrupt visible")]


def test_a_frozen_spinner_above_a_visible_prompt_is_history() -> None:
    stale = claude_working("✻", 40)
    agent = Agent(CLAUDE)
    agent.see(0.0, claude_working("✶", 39))
    agent.see(0.5, stale)
    agent.see(1.0, stale)
    agent.tick_until(30)
    assert [s for s, _ in statuses(agent)] == [S.RUNNING, S.READY]
    assert agent.changes[-1].at == 3.5


def test_a_spinner_frozen_with_nothing_else_moving_is_a_hung_agent() -> None:
    agent = Agent(SIM)
    for i in range(10):
        agent.see(i * 0.3, sim_working("✢✳✶✻✽"[i % 5]))
    agent.tick_until(200)  # the sim's --hang in a turn: the last frame stays
    assert statuses(agent) == [
        (S.RUNNING, "working: esc to interrupt visible"),
        (S.WAITING, "no change for 60 s with esc to interrupt visible: it may be hung"),
    ]
    assert agent.changes[-1].at == pytest.approx(2.7 + SIM.quiet_unknown_s)


def test_work_finishing_goes_running_then_ready_once() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_IDLE)
    agent.tick_until(5)
    agent.see(10.0, SIM_TYPED, input_sent_at=10.0)
    for i in range(10):
        agent.see(10.2 + i * 0.3, sim_working("✢✳✶✻✽"[i % 5]))
    agent.see(13.5, sim_done())
    agent.tick_until(30)
    assert statuses(agent) == [
        (S.READY, "prompt visible, no change for 3 s"),
        (S.RUNNING, "prompt sent; prompt visible"),
        (S.READY, "prompt visible, no change for 3 s"),
    ]
    assert agent.changes[-1].at == 16.5


def test_ready_latches_through_repaints_while_the_prompt_stays() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_IDLE)
    agent.tick_until(5)
    agent.see(6.0, SIM_BANNER + "Update available: 0.2.0\n> \n")  # a notice printed above the prompt
    agent.see(6.5, SIM_TYPED)  # a person typing
    agent.see(7.0, SIM_IDLE)
    agent.tick_until(30)
    assert [s for s, _ in statuses(agent)] == [S.READY]


def test_sending_input_releases_the_latch() -> None:
    agent = Agent(CLAUDE)
    agent.see(0.0, CLAUDE_IDLE)
    agent.tick_until(5)
    agent.see(8.0, input_sent_at=7.9)
    assert (agent.status, agent.state.reason) == (S.RUNNING, "prompt sent; prompt visible")
    agent.see(8.2, claude_working("✢", 0))
    agent.see(8.6, claude_working("✳", 0))
    assert agent.status is S.RUNNING


def test_the_prompt_going_away_releases_the_latch() -> None:
    agent = Agent(get_harness("aider"))
    agent.see(0.0, AIDER_IDLE)
    agent.tick_until(5)
    agent.see(6.0, AIDER_IDLE[:-3] + "\n> fix login\nsrc/login.py\nEditing the file…\n")
    assert (agent.status, agent.state.reason) == (S.RUNNING, "output changing; no prompt visible")


def test_the_prompt_alone_never_skips_the_settle() -> None:
    agent = Agent(SIM)
    for i in range(10):  # output keeps coming above the prompt, every second
        agent.see(float(i), SIM_BANNER + "".join(f"line {n}\n" for n in range(i)) + "> \n")
    assert agent.status is S.LOADING
    agent.tick_until(20)
    assert statuses(agent) == [(S.READY, "prompt visible, no change for 3 s")]
    assert agent.changes[0].at == 12.0


# --- permission prompts and questions ----------------------------------------------------------------------


def test_a_permission_prompt_waits_for_a_person_with_the_prompt_in_the_reason() -> None:
    agent = Agent(SIM)
    agent.see(0.0, sim_working("✢"))
    d = agent.see(1.0, SIM_PERMISSION)
    assert d.keys == ()
    assert statuses(agent)[-1] == (
        S.WAITING,
        "permission prompt: Do you want to make this edit to src/login.py?",
    )


def test_gemini_permission_reason_carries_yes_allow_once() -> None:
    agent = Agent(get_harness("gemini"))
    agent.see(0.0, GEMINI_OPTIONS_ONLY)
    assert agent.state.reason == "permission prompt: ● 1. Yes, allow once"
    assert agent.status is S.WAITING


def test_auto_yes_does_not_answer_a_permission_prompt_the_policy_leaves_to_a_person() -> None:
    agent = Agent(SIM, auto_yes=True)
    d = agent.see(1.0, SIM_PERMISSION)
    assert (d.keys, agent.status) == ((), S.WAITING)


def test_auto_yes_with_allow_all_answers_without_a_waiting_status() -> None:
    agent = Agent(SIM, auto_yes=True, permissions=PermissionPolicy(mode="allow_all"))
    agent.see(0.0, sim_working("✢"))
    d = agent.see(1.0, SIM_PERMISSION)
    assert d.keys == ("1",)
    assert d.keys_reason == (
        "auto-yes: permission allowed by the policy (allow_all): "
        "Do you want to make this edit to src/login.py?"
    )
    assert (agent.status, agent.state.reason) == (
        S.RUNNING,
        "answering permission prompt: Do you want to make this edit to src/login.py?",
    )
    agent.see(1.3, sim_working("✳"))
    assert S.WAITING not in [c.status for c in agent.changes]


def test_keys_that_do_not_dismiss_a_prompt_are_retried_then_left_to_a_person() -> None:
    agent = Agent(SIM, auto_yes=True, permissions=PermissionPolicy(mode="allow_all"))
    sent = [agent.see(t, SIM_PERMISSION).keys for t in (1.0, 1.5, 3.0, 3.5, 5.0, 6.0, 7.1, 9.0)]
    assert sent == [("1",), (), ("1",), (), ("1",), (), (), ()]
    assert statuses(agent)[-1] == (
        S.WAITING,
        "permission prompt: Do you want to make this edit to src/login.py?"
        " (answered 3 times; it is still there)",
    )


def test_deny_all_refuses() -> None:
    agent = Agent(SIM, auto_yes=True, permissions=PermissionPolicy(mode="deny_all"))
    d = agent.see(1.0, SIM_PERMISSION)
    assert d.keys == ("3",)
    assert d.keys_reason.startswith("auto-yes: permission refused by the policy (deny_all)")


def test_a_question_is_answered_yes_only_with_auto_yes() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_QUESTION)
    assert (agent.status, agent.state.reason) == (
        S.WAITING,
        "question: Would you like to proceed? (Y)es/(N)o",
    )
    agent = Agent(SIM, auto_yes=True)
    d = agent.see(0.0, SIM_QUESTION)
    assert d.keys == ("y", "Enter")


def test_the_prompt_answered_gives_way_to_work() -> None:
    agent = Agent(SIM)
    agent.see(0.0, sim_working("✢"))
    agent.see(1.0, SIM_PERMISSION)
    agent.see(9.0, sim_working("✽") + "Edited src/login.py\n✶ Working… (esc to interrupt)\n")
    assert [s for s, _ in statuses(agent)] == [S.RUNNING, S.WAITING, S.RUNNING]


@pytest.mark.parametrize(
    ("harness", "screen", "auto_yes", "policy", "keys"),
    [
        ("sim", SIM_TRUST, False, PermissionPolicy(), ("Enter",)),
        ("claude", CLAUDE_TRUST, False, PermissionPolicy(), ("Enter",)),
        ("aider", AIDER_DOCS, False, PermissionPolicy(), ("D", "Enter")),
        ("sim", SIM_IDLE, True, PermissionPolicy(mode="allow_all"), None),
        ("sim", SIM_PERMISSION, False, PermissionPolicy(mode="allow_all"), None),
        ("sim", SIM_PERMISSION, True, PermissionPolicy(), None),
        ("sim", SIM_PERMISSION, True, PermissionPolicy(mode="allow_all"), ("1",)),
        ("sim", SIM_PERMISSION, True, PermissionPolicy(mode="deny_all"), ("3",)),
        ("sim", SIM_COMMAND, True, PermissionPolicy(mode="allow_all"), ("1",)),
        ("sim", SIM_COMMAND, True, PermissionPolicy(allow=("^Bash command: npm test$",)), ("1",)),
        ("sim", SIM_PERMISSION, True, PermissionPolicy(allow=(r"make this edit to src/",)), ("1",)),
        ("sim", SIM_PERMISSION, True, PermissionPolicy(allow=(r"to tests/",)), None),
        ("sim", SIM_QUESTION, True, PermissionPolicy(), ("y", "Enter")),
        ("sim", SIM_QUESTION, False, PermissionPolicy(), None),
        ("claude", CLAUDE_PERMISSION, True, PermissionPolicy(mode="allow_all"), ("Enter",)),
        ("claude", CLAUDE_PERMISSION, True, PermissionPolicy(mode="deny_all"), ("Escape",)),
        ("codex", CODEX_APPROVAL, True, PermissionPolicy(mode="allow_all"), ("Enter",)),
        ("aider", AIDER_SHELL, True, PermissionPolicy(mode="allow_all"), ("y", "Enter")),
        ("aider", AIDER_SHELL, True, PermissionPolicy(), None),
        ("aider", AIDER_ADD_FILE, True, PermissionPolicy(), ("y", "Enter")),
    ],
)
def test_auto_answer(
    harness: str, screen: str, auto_yes: bool, policy: PermissionPolicy, keys: tuple[str, ...] | None
) -> None:
    assert auto_answer(get_harness(harness), screen, auto_yes, policy) == keys


# --- the process wins over the screen ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "status", "reason"),
    [
        (Evidence(alive=False, exit_status=0), S.EXITED, "exit status 0"),
        (Evidence(alive=False, exit_status=1, restarts=2), S.EXITED, "exit status 1 after 2 restarts"),
        (Evidence(alive=False, exit_signal=9), S.EXITED, "killed by SIGKILL"),
        (Evidence(alive=False, exit_signal=99), S.EXITED, "killed by signal 99"),
        (Evidence(alive=False), S.EXITED, "the process is gone (no exit status)"),
        (
            Evidence(
                alive=False, exit_status=137, restarts=3, gave_up=True, give_up_reason="4 exits in 60 s"
            ),
            S.FAILED,
            "exit status 137 after 3 restarts; 4 exits in 60 s",
        ),
        (
            Evidence(alive=False, exit_status=2, restarts=1, gave_up=True),
            S.FAILED,
            "exit status 2 after 1 restart; not restarted",
        ),
        (Evidence(alive=False, paused=True), S.PAUSED, "paused"),
        (Evidence(alive=True, paused=True, screen=SIM_IDLE), S.PAUSED, "paused"),
    ],
)
def test_process_evidence(evidence: Evidence, status: AgentStatus, reason: str) -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_IDLE)
    agent.tick_until(5)
    d = decide(agent.state, evidence, SIM, 10.0)
    assert (d.state.status, d.state.reason) == (status, reason)
    assert d.change == StatusChange(status=status, previous=S.READY, reason=reason, at=10.0)
    assert d.wake_at is None


def test_a_dead_agent_whose_last_screen_shows_its_prompt_is_exited() -> None:
    d = decide(TrackerState.start(0.0), Evidence(alive=False, exit_status=0, screen=SIM_IDLE), SIM, 9.0)
    assert d.state.status is S.EXITED


def test_a_restart_starts_loading_again_and_says_so() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_IDLE)
    agent.tick_until(5)
    agent.see(6.0, alive=False, exit_signal=9)
    agent.see(8.0, SIM_BANNER, restarts=1)
    agent.see(8.5, SIM_IDLE, restarts=1)
    agent.tick_until(20)
    assert statuses(agent) == [
        (S.READY, "prompt visible, no change for 3 s"),
        (S.EXITED, "killed by SIGKILL"),
        (S.LOADING, "restarted (restart 1); starting: no prompt yet"),
        (S.READY, "prompt visible, no change for 3 s"),
    ]


def test_a_resumed_agent_loads_again() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_IDLE)
    agent.see(2.0, paused=True, alive=False)
    agent.see(9.0, SIM_BANNER)
    assert statuses(agent)[-2:] == [(S.PAUSED, "paused"), (S.LOADING, "resumed; starting: no prompt yet")]


# --- screens nothing recognises ----------------------------------------------------------------------------


def test_an_unrecognised_screen_loads_then_runs_while_it_changes_then_needs_a_person() -> None:
    custom = get_harness("custom")
    agent = Agent(custom)
    for t in range(0, 40):
        agent.see(float(t), f"my-agent booting, step {t}\n")  # a new line of output each second
    agent.see(40.0, "my-agent: what now?\n")
    agent.tick_until(100)
    assert statuses(agent) == [
        (S.RUNNING, "output changing; no prompt visible"),
        (S.WAITING, "no change for 10 s and no prompt recognised"),
    ]
    assert agent.changes[0].at == custom.start_timeout_s
    assert agent.changes[-1].at == 50.0


def test_an_agent_that_never_shows_a_prompt_is_not_loading_forever() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_BANNER)
    agent.tick_until(200)
    assert [s for s, _ in statuses(agent)] == [S.WAITING]
    assert agent.changes[0].at == SIM.quiet_unknown_s


def test_without_any_screen_output_age_is_the_evidence() -> None:
    agent = Agent(get_harness("custom"))
    for t in range(0, 40, 2):
        agent.see(float(t), last_output_at=float(t))
    agent.tick_until(100)
    assert [s for s, _ in statuses(agent)] == [S.RUNNING, S.WAITING]


# --- wake-ups ----------------------------------------------------------------------------------------------


def test_an_idle_agent_asks_for_no_more_wake_ups() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_IDLE)
    agent.tick_until(100)
    assert agent.status is S.READY
    assert agent.decisions[-1].wake_at is None
    assert len(agent.decisions) == 2


def test_deciding_again_with_no_new_evidence_changes_nothing() -> None:
    agent = Agent(SIM)
    agent.see(0.0, SIM_TRUST)
    agent.see(0.5, SIM_IDLE)
    d = decide(agent.state, Evidence(), SIM, 0.5)
    assert d.change is None and d.keys == ()
    assert d.state == agent.state


# --- sdk mode ----------------------------------------------------------------------------------------------


def test_sdk_turns_drive_the_status() -> None:
    codex = get_harness("codex")
    agent = Agent(codex)
    agent.see(0.0, mode="sdk")
    agent.see(1.0, mode="sdk", sdk_events=(SessionStarted("thr_1"),))
    agent.see(2.0, mode="sdk", input_sent_at=2.0)
    agent.see(2.5, mode="sdk", sdk_events=(TurnStarted("t1"), AgentText("Looking")))
    agent.see(3.0, mode="sdk", sdk_events=(Approval(7, "command", "rm -rf build"),))
    agent.see(9.0, mode="sdk", sdk_events=(AgentText("Removed."),))
    agent.see(9.5, mode="sdk", sdk_events=(TurnCompleted("t1"),))
    agent.see(20.0, mode="sdk", input_sent_at=20.0)
    agent.see(21.0, mode="sdk", sdk_events=(TurnCompleted("t2", status="failed", error="not logged in"),))
    assert statuses(agent) == [
        (S.READY, "session started"),
        (S.RUNNING, "prompt sent"),
        (S.WAITING, "permission request: command: rm -rf build"),
        (S.RUNNING, "turn running"),
        (S.READY, "turn completed"),
        (S.RUNNING, "prompt sent"),
        (S.READY, "turn failed: not logged in"),
    ]
    # Only a running turn asks to be looked at again: its silence would make it "may be hung".
    for d in agent.decisions:
        running = d.state.status is S.RUNNING
        assert d.wake_at == (d.state.busy_at + codex.sdk_quiet_s if running else None)


HUNG_HINT = "(interrupt it: corral instance send-keys w1 C-c; restart it: corral instance restart w1)"


def sdk_agent(quiet_s: float = 120.0) -> Agent:
    agent = Agent(msgspec.structs.replace(get_harness("codex"), sdk_quiet_s=quiet_s), title="w1")
    agent.see(0.0, mode="sdk", sdk_events=(SessionStarted("thr_1"),))
    agent.see(1.0, mode="sdk", input_sent_at=1.0)
    agent.see(1.5, mode="sdk", sdk_events=(TurnStarted("t1"),))
    return agent


def test_an_sdk_turn_with_no_event_for_sdk_quiet_s_may_be_hung() -> None:
    agent = sdk_agent()
    assert agent.decisions[-1].wake_at == 121.5
    agent.see(60.0, mode="sdk", last_output_at=60.0)  # output that carries no event (a command's output)
    assert agent.status is S.RUNNING and agent.decisions[-1].wake_at == 180.0
    agent.see(180.0, mode="sdk")  # the wake-up: nothing since
    assert agent.status is S.WAITING
    assert agent.state.reason == f"no event for 120 s during a turn: it may be hung {HUNG_HINT}"
    assert agent.decisions[-1].wake_at is None  # waiting for a person: nothing to look at again for
    agent.see(200.0, mode="sdk", sdk_events=(AgentText("still here"),))
    agent.see(201.0, mode="sdk", sdk_events=(TurnCompleted("t1"),))
    assert statuses(agent)[-3:] == [
        (S.WAITING, f"no event for 120 s during a turn: it may be hung {HUNG_HINT}"),
        (S.RUNNING, "turn running"),
        (S.READY, "turn completed"),
    ]


def test_the_hang_threshold_is_the_harness_setting() -> None:
    agent = sdk_agent(quiet_s=5.0)
    agent.see(6.4, mode="sdk")
    assert agent.status is S.RUNNING and agent.decisions[-1].wake_at == 6.5
    agent.see(6.5, mode="sdk")
    assert agent.status is S.WAITING and agent.state.reason.startswith("no event for 5 s during a turn")


def test_an_sdk_agent_waiting_for_approval_is_never_called_hung() -> None:
    agent = sdk_agent()
    agent.see(2.0, mode="sdk", sdk_events=(Approval(1, "command", "make"),))
    assert agent.decisions[-1].wake_at is None
    agent.see(500.0, mode="sdk")
    assert (agent.status, agent.state.reason) == (S.WAITING, "permission request: command: make")


def codex_retry(message: str, stalled: bool = False) -> SdkError:
    return SdkError(message, retrying=True, cause=UNREACHABLE, stalled=stalled)


def test_retried_api_errors_are_the_running_turns_reason_until_it_moves_on() -> None:
    agent = sdk_agent()
    agent.see(2.0, mode="sdk", sdk_events=(codex_retry("Reconnecting... 1/5"),))
    assert (agent.status, agent.state.reason) == (S.RUNNING, f"{UNREACHABLE}: Reconnecting... 1/5")
    agent.see(3.0, mode="sdk", sdk_events=(codex_retry("Reconnecting... 2/5"),))
    assert agent.state.reason == f"{UNREACHABLE}: Reconnecting... 2/5"
    agent.see(4.0, mode="sdk", sdk_events=(AgentText("Looking at the code"),))  # it got through
    assert (agent.status, agent.state.reason) == (S.RUNNING, "turn running")


def test_an_agent_that_says_it_cannot_go_on_is_waiting_with_its_words() -> None:
    agent = sdk_agent()
    for at, n in ((2.0, 4), (3.0, 5)):
        agent.see(at, mode="sdk", sdk_events=(codex_retry(f"Reconnecting... {n}/5"),))
    agent.see(4.0, mode="sdk", sdk_events=(codex_retry("Reconnecting... waiting for network", stalled=True),))
    reason = (
        f"{UNREACHABLE}: Reconnecting... waiting for network; the turn cannot go on by itself {HUNG_HINT}"
    )
    assert (agent.status, agent.state.reason) == (S.WAITING, reason)
    agent.see(9.0, mode="sdk", sdk_events=(AgentText("back"),))  # the network came back
    assert (agent.status, agent.state.reason) == (S.RUNNING, "turn running")


def test_errors_retried_with_no_progress_for_sdk_quiet_s_end_waiting() -> None:
    agent = sdk_agent(quiet_s=30.0)
    for at in range(2, 30, 5):  # an error every 5 s: never silent, never moving on
        agent.see(float(at), mode="sdk", sdk_events=(codex_retry(f"Reconnecting... {at}/99"),))
    assert agent.status is S.RUNNING and agent.decisions[-1].wake_at == 32.0
    agent.see(32.0, mode="sdk")
    assert agent.status is S.WAITING
    assert agent.state.reason.startswith(f"{UNREACHABLE}: Reconnecting... 27/99; no progress for 30 s")


def test_a_failed_turn_after_api_errors_is_ready_with_its_error() -> None:
    agent = sdk_agent()
    agent.see(2.0, mode="sdk", sdk_events=(SdkError("API retry 1/10", retrying=True, cause=UNREACHABLE),))
    agent.see(3.0, mode="sdk", sdk_events=(SdkError("usage limit reached (five hour)", cause=RATE_LIMITED),))
    assert agent.state.reason == f"{RATE_LIMITED}: usage limit reached (five hour)"
    agent.see(4.0, mode="sdk", sdk_events=(TurnCompleted(status="failed", error="API Error: 429"),))
    assert statuses(agent)[-1] == (S.READY, "turn failed: API Error: 429")


def test_an_agent_line_that_is_no_api_error_changes_no_reason() -> None:
    agent = sdk_agent()
    agent.see(2.0, mode="sdk", sdk_events=(SdkError("warning: config file has an old key"),))
    assert (agent.status, agent.state.reason) == (S.RUNNING, "turn running")
    agent.see(3.0, mode="sdk", input_sent_at=3.0)
    agent.see(3.5, mode="sdk", sdk_events=(TurnCompleted("t1"), codex_retry("Reconnecting... 1/5")))
    assert (agent.status, agent.state.reason) == (S.READY, "turn completed")  # no turn: no trouble


def test_claude_sdk_session_starts_with_the_first_turn() -> None:
    agent = Agent(CLAUDE)
    agent.see(0.0, mode="sdk", input_sent_at=0.0)
    agent.see(1.0, mode="sdk", sdk_events=(SessionStarted("s1"), AgentText("Hi")))
    agent.see(2.0, mode="sdk", sdk_events=(TurnCompleted(text="done"),))
    assert statuses(agent) == [(S.RUNNING, "prompt sent"), (S.READY, "turn completed")]


def test_an_exit_reason_carries_what_the_agent_said_last() -> None:
    words = "Unable to connect to Anthropic services / Please check your internet connection"
    agent = Agent(CLAUDE)
    agent.see(0.0, alive=False, exit_status=1, said=words)
    assert statuses(agent)[-1] == (S.EXITED, f"exit status 1: {words}")
    agent.see(1.0, alive=False, exit_status=1, restarts=2, said=words)
    assert agent.state.reason == f"exit status 1 after 2 restarts: {words}"
    why = f"gave up after 2 restarts within 60 s (last error: {words})"
    agent.see(2.0, alive=False, exit_status=1, restarts=2, gave_up=True, give_up_reason=why, said=words)
    assert statuses(agent)[-1] == (S.FAILED, f"exit status 1 after 2 restarts; {why}")  # said once
    agent.see(3.0, alive=False, killed=True, said=words)
    assert agent.state.reason == "killed by request"


def test_last_words_are_the_last_lines_that_say_something() -> None:
    screen = (
        f"{BOLD}corral-sim 0.1.0{OFF}\n"
        "Unable to connect to Anthropic services\n"
        f"{RED}Failed to connect to api.anthropic.com: ENOTFOUND{OFF}\n"
        "Please check your   internet connection and network settings.\n"
        f"╭{BOX}╮\n│ >{' ' * 48}│\n╰{BOX}╯\n\n\n"
    )
    assert status_module.last_words(screen) == (
        "Unable to connect to Anthropic services / Failed to connect to api.anthropic.com: ENOTFOUND / "
        "Please check your internet connection and network settings."
    )
    assert status_module.last_words(screen, lines=1) == (
        "Please check your internet connection and network settings."
    )
    long = status_module.last_words("x" * 1000 + "\nthe end", limit=50)
    assert len(long) == 50 and long.startswith("…") and long.endswith(" / the end")
    assert status_module.last_words("") == "" and status_module.last_words("> \n╰──╯\n") == ""
    crashed = (
        "⏺ I'll look.\n> fix the bug\n✢ Working… (esc to interrupt)\ncorral-sim: simulated crash (exit 3)\n"
    )
    assert status_module.last_words(crashed) == "⏺ I'll look. / corral-sim: simulated crash (exit 3)"


def test_sdk_process_evidence_still_wins() -> None:
    agent = Agent(CLAUDE)
    agent.see(0.0, mode="sdk", sdk_events=(SessionStarted("s1"),))
    agent.see(1.0, mode="sdk", alive=False, exit_status=1)
    assert statuses(agent)[-1] == (S.EXITED, "exit status 1")


# --- fuzzing -----------------------------------------------------------------------------------------------

FRAGMENTS = [
    *(
        line
        for screen in (SIM_PERMISSION, CLAUDE_PERMISSION, CODEX_APPROVAL, AIDER_SHELL, GEMINI_PERMISSION)
        for line in screen.split("\n")
    ),
    "> ",
    "❯ 1. Yes",
    "✻ Working… (esc to interrupt)",
    "\x1b[",
    "\x1b]0;",
    "\r",
    "\x9b",
    "(Y)es/(N)o",
    "Do you trust the files in this folder?",
]
screens = st.text(max_size=400) | st.lists(
    st.sampled_from(FRAGMENTS) | st.text(max_size=20), max_size=30
).map("\n".join)


@settings(max_examples=200, deadline=None)
@given(screen=screens, harness=st.sampled_from(list(BUILTIN_HARNESSES.values())), auto_yes=st.booleans())
def test_any_screen_text_never_raises(screen: str, harness: Harness, auto_yes: bool) -> None:
    assert "\x1b" not in strip_ansi(screen)
    read_screen(harness, screen)
    auto_answer(harness, screen, auto_yes, PermissionPolicy(mode="allow_all"))
    state = TrackerState.start(0.0)
    for t in (0.0, 1.0, 5.0):
        decision = decide(state, Evidence(screen=screen), harness, t, auto_yes=auto_yes)
        state = decision.state
        assert state.reason
        assert decision.wake_at is None or decision.wake_at > t
