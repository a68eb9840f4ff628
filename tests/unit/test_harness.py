"""protocols.harness: the built-in descriptions, detection from program strings, modes, launch commands."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import harness as harness_module
from protocols.errors import UsageError
from protocols.harness import (
    BUILTIN_HARNESSES,
    Harness,
    Launch,
    effective_mode,
    get_harness,
    harness_for_program,
    launch_argv,
    plan_launch,
    program_name,
)
from protocols.sdk import claude_argv_flags

STREAM_JSON = tuple(claude_argv_flags())


def test_public_names_are_pinned() -> None:
    assert sorted(harness_module.__all__) == sorted(
        [
            "BUILTIN_HARNESSES",
            "ExecutionMode",
            "Harness",
            "Launch",
            "PromptDelivery",
            "ScreenPrompt",
            "SdkLaunch",
            "SdkTransport",
            "effective_mode",
            "get_harness",
            "harness_for_program",
            "launch_argv",
            "plan_launch",
            "program_name",
        ]
    )


def test_the_built_in_harnesses_are_the_ones_the_design_names() -> None:
    assert list(BUILTIN_HARNESSES) == [
        "claude",
        "codex",
        "opencode",
        "gemini",
        "aider",
        "amp",
        "sim",
        "custom",
    ]
    for name, harness in BUILTIN_HARNESSES.items():
        assert harness.name == name


def test_harnesses_are_frozen() -> None:
    with pytest.raises(AttributeError):
        get_harness("claude").program = "x"  # type: ignore[misc]


@pytest.mark.parametrize("harness", BUILTIN_HARNESSES.values(), ids=list(BUILTIN_HARNESSES))
def test_every_built_in_pattern_compiles(harness: Harness) -> None:
    prompts = (*harness.start_screens, *harness.permission_patterns, *harness.question_patterns)
    for pattern in (*harness.ready_patterns, *harness.working_patterns, *harness.volatile_patterns):
        re.compile(pattern)
    for prompt in prompts:
        re.compile(prompt.pattern)
        assert prompt.yes, f"{harness.name}: {prompt.pattern} has no keys to answer it"


@pytest.mark.parametrize("harness", BUILTIN_HARNESSES.values(), ids=list(BUILTIN_HARNESSES))
def test_every_built_in_is_self_consistent(harness: Harness) -> None:
    assert harness.prompt_delivery != "flag" or harness.prompt_flag
    assert not harness.long_prompt_chars or "{file}" in harness.long_prompt_text
    for args in (harness.resume_args, harness.session_id_args):
        assert not args or any("{session}" in a for a in args)
    assert harness.name == "custom" or harness.program


def test_sdk_is_offered_for_claude_and_codex_and_the_sim_only() -> None:
    offered = {name: tuple(s.transport for s in h.sdk) for name, h in BUILTIN_HARNESSES.items() if h.sdk}
    assert offered == {"claude": ("claude",), "codex": ("codex",), "sim": ("claude", "codex")}


def test_the_sims_sdk_launch_mirrors_the_real_clis() -> None:
    sim, claude, codex = get_harness("sim"), get_harness("claude"), get_harness("codex")
    assert sim.sdk == (*claude.sdk, *codex.sdk)
    assert claude.sdk[0].args == STREAM_JSON
    assert codex.sdk[0].args == ("app-server",)


# --- which harness runs a program --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("claude", "claude"),
        ("claude --model opus", "claude"),  # claude-squad matched the exact string and lost detection here
        ("/usr/local/bin/claude", "claude"),
        ("Claude", "claude"),
        ("npx @anthropic-ai/claude-code", "claude"),
        ("codex", "codex"),
        ("/usr/bin/codex --x", "codex"),
        ("npx -y @openai/codex@latest", "codex"),
        ("env FOO=1 BAR='a b' codex --search", "codex"),
        ("opencode", "opencode"),
        ("bunx opencode-ai", "opencode"),
        ("gemini -m pro", "gemini"),
        ("npx @google/gemini-cli", "gemini"),
        ("aider --model sonnet", "aider"),
        ("uvx --from aider-chat aider", "aider"),
        ("amp", "amp"),
        ("corral-sim", "sim"),
        ("/work/main/.venv/bin/corral-sim --crash-after 3", "sim"),
        ("my-agent --fast", "custom"),
        ("", "custom"),
        ("   ", "custom"),
        ("claude 'unbalanced", "claude"),
    ],
)
def test_harness_is_detected_by_the_name_the_program_runs(program: str, expected: str) -> None:
    assert harness_for_program(program).name == expected


@pytest.mark.parametrize(
    ("program", "name"),
    [("/opt/x/bin/codex", "codex"), ("env A=1 claude", "claude"), ("npx", ""), ("FOO=1", ""), ("", "")],
)
def test_program_name(program: str, name: str) -> None:
    assert program_name(program) == name


def test_a_custom_harness_wins_over_a_built_in_of_the_same_name() -> None:
    mine = msgspec.structs.replace(get_harness("claude"), ready_patterns=("^READY$",))
    assert harness_for_program("claude --verbose", {"claude": mine}) is mine


def test_a_custom_harness_is_found_by_its_own_programs_name() -> None:
    bot = Harness(name="bot", program="/opt/bot/bin/run-bot")
    assert harness_for_program("run-bot --fast", {"bot": bot}) is bot
    assert harness_for_program("bot", {"bot": bot}) is bot
    assert harness_for_program("codex", {"bot": bot}).name == "codex"


def test_get_harness_accepts_aliases_and_names_the_harnesses_when_unknown() -> None:
    assert get_harness("corral-sim") is get_harness("sim")
    with pytest.raises(UsageError) as err:
        get_harness("cursor")
    assert 'unknown harness "cursor"' in str(err.value)
    assert "claude, codex, opencode, gemini, aider, amp, sim, custom" in str(err.value)


# --- modes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "requested", "mode", "note"),
    [
        ("claude", "sdk", "sdk", ""),
        ("codex", "sdk", "sdk", ""),
        ("codex", "headless", "sdk", ""),
        ("sim", "sdk", "sdk", ""),
        ("claude", "tmux", "tmux", ""),
        ("claude", "pty", "pty", ""),
        ("aider", "pty", "pty", ""),
        ("aider", "sdk", "tmux", "sdk is offered for claude and codex only; aider runs in tmux"),
        ("gemini", "headless", "tmux", "sdk is offered for claude and codex only; gemini runs in tmux"),
        ("opencode", "sdk", "tmux", "sdk is offered for claude and codex only; opencode runs in tmux"),
        ("amp", "sdk", "tmux", "sdk is offered for claude and codex only; amp runs in tmux"),
        ("custom", "sdk", "tmux", "sdk is offered for claude and codex only; custom runs in tmux"),
        ("claude", "docker", "tmux", 'unknown execution mode "docker"; claude runs in tmux'),
    ],
)
def test_effective_mode_falls_back_to_tmux_with_a_note(
    name: str, requested: str, mode: str, note: str
) -> None:
    assert effective_mode(get_harness(name), requested) == (mode, note)


# --- launch commands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "argv", "send"),
    [
        (
            "claude",
            ("claude", "--dangerously-skip-permissions", "--model", "opus", "--verbose", "fix the bug"),
            "",
        ),
        (
            "codex",
            (
                "codex",
                "--dangerously-bypass-approvals-and-sandbox",
                "--model",
                "opus",
                "--verbose",
                "fix the bug",
            ),
            "",
        ),
        ("opencode", ("opencode", "--auto", "--model", "opus", "--verbose", "--prompt", "fix the bug"), ""),
        (
            "gemini",
            ("gemini", "--yolo", "--model", "opus", "--verbose", "--prompt-interactive", "fix the bug"),
            "",
        ),
        ("aider", ("aider", "--yes-always", "--model", "opus", "--verbose"), "fix the bug"),
        ("amp", ("amp", "--dangerously-allow-all", "--verbose"), "fix the bug"),
        (
            "sim",
            ("corral-sim", "--dangerously-skip-permissions", "--model", "opus", "--verbose", "fix the bug"),
            "",
        ),
    ],
)
def test_launch_argv_per_harness(name: str, argv: tuple[str, ...], send: str) -> None:
    launch = plan_launch(
        get_harness(name), model="opus", flags=["--verbose"], skip_permissions=True, prompt="fix the bug"
    )
    assert (launch.argv, launch.send, launch.mode, launch.prompt_file) == (argv, send, "tmux", "")
    assert launch_argv(get_harness(name), "", "opus", ["--verbose"], True, "fix the bug") == list(argv)


def test_no_skip_permissions_and_no_model_add_no_flags() -> None:
    assert plan_launch(get_harness("claude"), prompt="hi").argv == ("claude", "hi")
    assert plan_launch(get_harness("codex")).argv == ("codex",)


def test_the_profiles_program_string_replaces_the_harness_binary_and_keeps_its_arguments() -> None:
    launch = plan_launch(get_harness("claude"), program="/opt/claude/bin/claude --verbose", prompt="go")
    assert launch.argv == ("/opt/claude/bin/claude", "--verbose", "go")


def test_what_a_harness_cannot_do_is_noted_not_dropped_silently() -> None:
    amp = plan_launch(get_harness("amp"), model="smart", skip_permissions=True)
    assert "amp takes no model flag" in amp.note
    custom = plan_launch(get_harness("custom"), program="my-agent --fast", skip_permissions=True, prompt="go")
    assert custom.argv == ("my-agent", "--fast")
    assert custom.send == "go"
    assert "custom has no switch to skip permission prompts; they stay on" in custom.note


@pytest.mark.parametrize(
    ("name", "tail", "send"),
    [
        ("claude", ("Read the task in @.corral/prompts/t1.md and carry it out.",), ""),
        (
            "sim",
            (
                "--prompt-file",
                ".corral/prompts/t1.md",
                "Read the task in @.corral/prompts/t1.md and carry it out.",
            ),
            "",
        ),
        ("codex", ("Read the task in .corral/prompts/t1.md and carry it out.",), ""),
        ("opencode", ("--prompt", "Read the task in .corral/prompts/t1.md and carry it out."), ""),
        (
            "gemini",
            ("--prompt-interactive", "Read the task in @.corral/prompts/t1.md and carry it out."),
            "",
        ),
        (
            "aider",
            ("--read", ".corral/prompts/t1.md"),
            "The task is in .corral/prompts/t1.md, added to the chat read-only: carry it out.",
        ),
    ],
)
def test_a_long_prompt_goes_through_a_file(name: str, tail: tuple[str, ...], send: str) -> None:
    harness = get_harness(name)
    prompt = "x" * (harness.long_prompt_chars + 1)
    launch = plan_launch(harness, prompt=prompt, prompt_file=".corral/prompts/t1.md")
    assert launch.argv[1:] == tail
    assert launch.send == send
    assert launch.prompt_file == ".corral/prompts/t1.md"


def test_a_prompt_at_the_threshold_is_passed_inline() -> None:
    prompt = "x" * get_harness("claude").long_prompt_chars
    launch = plan_launch(get_harness("claude"), prompt=prompt, prompt_file="p.md")
    assert launch.argv == ("claude", prompt)
    assert launch.prompt_file == ""


def test_a_long_prompt_without_a_file_is_refused() -> None:
    with pytest.raises(ValueError, match="pass prompt_file"):
        plan_launch(get_harness("codex"), prompt="x" * 9000)


@pytest.mark.parametrize("name", ["amp", "custom"])
def test_a_harness_without_a_threshold_sends_any_prompt_whole(name: str) -> None:
    launch = plan_launch(get_harness(name), program="x", prompt="y" * 100_000)
    assert launch.send == "y" * 100_000
    assert launch.prompt_file == ""


def test_a_prompt_that_looks_like_an_option_stays_a_prompt() -> None:
    assert plan_launch(get_harness("claude"), prompt="-v is broken").argv == ("claude", "--", "-v is broken")
    assert plan_launch(get_harness("gemini"), prompt="--x").argv == ("gemini", "--prompt-interactive=--x")


def test_a_multi_line_prompt_is_one_argument() -> None:
    assert plan_launch(get_harness("codex"), prompt="a\nb\n").argv == ("codex", "a\nb\n")


@pytest.mark.parametrize("program", ["", "   "])
def test_no_program_at_all_is_a_usage_error(program: str) -> None:
    with pytest.raises(UsageError, match="no program to run"):
        plan_launch(get_harness("custom"), program=program)


def test_an_unreadable_program_string_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="cannot read the program"):
        plan_launch(get_harness("claude"), program="claude 'oops")


def test_enter_settle_comes_from_the_harness() -> None:
    assert plan_launch(get_harness("codex")).enter_settle_s == 0.5
    assert plan_launch(get_harness("claude")).enter_settle_s == 0.3


# --- sdk launches ------------------------------------------------------------------------------------------


def test_claude_in_sdk_mode_speaks_stream_json_with_its_options_on_the_command_line() -> None:
    launch = plan_launch(
        get_harness("claude"), model="opus", skip_permissions=True, prompt="go", mode="sdk", flags=["--x"]
    )
    assert launch == Launch(
        argv=("claude", "--dangerously-skip-permissions", "--model", "opus", *STREAM_JSON, "--x"),
        mode="sdk",
        sdk_transport="claude",
        send="go",
        enter_settle_s=0.3,
    )


def test_codex_in_sdk_mode_is_its_app_server_with_options_in_the_session_request() -> None:
    launch = plan_launch(get_harness("codex"), model="o3", skip_permissions=True, prompt="go", mode="sdk")
    assert (launch.argv, launch.sdk_transport, launch.send) == (("codex", "app-server"), "codex", "go")
    assert "codex sdk: model and approvals are set in the session request" in launch.note


def test_the_sim_speaks_either_transport() -> None:
    sim = get_harness("sim")
    assert plan_launch(sim, mode="sdk").argv == ("corral-sim", *STREAM_JSON)
    assert plan_launch(sim, mode="sdk", sdk_transport="codex").argv == ("corral-sim", "app-server")


def test_an_unknown_transport_falls_back_to_the_first_with_a_note() -> None:
    launch = plan_launch(get_harness("claude"), mode="sdk", sdk_transport="codex")
    assert launch.sdk_transport == "claude"
    assert "claude does not speak codex; using claude" in launch.note


def test_a_long_prompt_in_sdk_mode_is_sent_whole() -> None:
    launch = plan_launch(get_harness("claude"), mode="sdk", prompt="x" * 50_000)
    assert launch.send == "x" * 50_000
    assert launch.prompt_file == ""


def test_sdk_requested_for_aider_runs_it_in_tmux_with_the_prompt_typed_in() -> None:
    launch = plan_launch(get_harness("aider"), mode="sdk", prompt="go")
    assert (launch.mode, launch.argv, launch.send) == ("tmux", ("aider",), "go")
    assert launch.note == "sdk is offered for claude and codex only; aider runs in tmux"


def test_resuming_in_sdk_mode_is_left_to_the_runtime() -> None:
    launch = plan_launch(get_harness("claude"), mode="sdk", session="abc", resume=True)
    assert "--resume" not in launch.argv


# --- resuming ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "session", "resume", "head", "note"),
    [
        ("claude", "abc", True, ("claude", "--resume", "abc"), ""),
        ("claude", "", True, ("claude", "--continue"), ""),
        ("claude", "abc", False, ("claude", "--session-id", "abc"), ""),
        ("codex", "abc", True, ("codex", "resume", "abc"), ""),
        ("codex", "", True, ("codex", "resume", "--last"), ""),
        ("codex", "abc", False, ("codex",), ""),
        ("opencode", "ses_1", True, ("opencode", "--session", "ses_1"), ""),
        ("gemini", "", True, ("gemini", "--resume", "latest"), ""),
        ("amp", "T-1", True, ("amp", "threads", "continue", "T-1"), ""),
        (
            "aider",
            "abc",
            True,
            ("aider", "--restore-chat-history"),
            "aider cannot resume by id; continuing its most recent conversation",
        ),
        ("custom", "", True, ("x",), "custom cannot resume a conversation; starting a new one"),
    ],
)
def test_resume_arguments_come_right_after_the_program(
    name: str, session: str, resume: bool, head: tuple[str, ...], note: str
) -> None:
    launch = plan_launch(
        get_harness(name), program="x" if name == "custom" else "", session=session, resume=resume
    )
    assert launch.argv == head
    assert launch.note == note


def test_resume_and_a_prompt_together() -> None:
    launch = plan_launch(get_harness("codex"), session="abc", resume=True, model="o3", prompt="go on")
    assert launch.argv == ("codex", "resume", "abc", "--model", "o3", "go on")


# --- fuzzing -----------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_detection_never_raises(program: str) -> None:
    assert program_name(program) == program_name(program)
    assert harness_for_program(program).name in BUILTIN_HARNESSES


# --- the docs ----------------------------------------------------------------------------------------------

AGENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


@pytest.mark.parametrize("harness", BUILTIN_HARNESSES.values(), ids=list(BUILTIN_HARNESSES))
def test_docs_list_every_built_in_pattern(harness: Harness) -> None:
    docs = AGENTS_DOC.read_text()
    prompts = (*harness.start_screens, *harness.permission_patterns, *harness.question_patterns)
    for pattern in (
        *harness.ready_patterns,
        *harness.working_patterns,
        *harness.volatile_patterns,
        *(p.pattern for p in prompts),
    ):
        assert f"`{pattern}`" in docs, pattern
    for flag in (*harness.skip_permissions_flags, harness.prompt_flag):
        assert not flag or f"`{flag}`" in docs, flag
