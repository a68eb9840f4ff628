"""corral-sim's interactive mode in a real PTY, working in a real git repository."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontends.sim.screen import EDIT_OPTIONS, TRUST_OPTIONS, TRUST_QUESTION
from frontends.sim.testing import SIM, SimPty
from tests.conftest import GIT_ENV, git

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        **GIT_ENV,
        "CORRAL_SIM_STATE": str(tmp_path / "sim-state"),
        "CORRAL_SIM_THINK": "0.05",
        "CORRAL_TASK": "",
    }


@pytest.fixture
def spawn(git_repo: Path, env: dict[str, str]) -> Iterator[object]:
    """spawn(*args, **env) → a SimPty in the repository; every one is killed at teardown."""
    started: list[SimPty] = []

    def start(*args: str, **extra: str) -> SimPty:
        sim = SimPty([SIM, *args], cwd=git_repo, env=env | extra)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


def commits(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_banner_then_trust_screen_then_prompt_after_enter(spawn, git_repo: Path) -> None:
    sim = spawn()
    sim.expect("corral-sim 0.1.0 — simulated coding agent\r\n\r\n")
    sim.expect(TRUST_QUESTION + "\r\n")
    sim.expect(f"❯ 1. {TRUST_OPTIONS[0]}\r\n  2. {TRUST_OPTIONS[1]}\r\n")
    sim.send("\r")
    sim.expect("> ")
    assert sim.alive()


def test_trust_screen_answered_no_exits_1(spawn) -> None:
    sim = spawn()
    sim.expect(TRUST_QUESTION)
    sim.send("2")
    assert sim.wait() == 1


def test_plain_prompt_shows_the_spinner_then_edits_and_commits_a_file(spawn, git_repo: Path) -> None:
    sim = spawn("--no-trust", "--auto-approve")
    sim.expect("> ")
    sim.send("fix the login form\r")
    sim.expect("Working… (esc to interrupt)")
    frames = {m for m in "✢✳✶✻✽" if f"{m} Working…" in sim.output}
    sim.expect("⏺ Done. edited sim/work.txt; committed ")
    sim.expect("\r\n> ")
    assert frames  # the spinner's glyph was drawn
    assert commits(git_repo)[0] == "sim: fix the login form"
    assert (git_repo / "sim" / "work.txt").read_text() == "turn 1: fix the login form\n"
    assert git(git_repo, "status", "--porcelain") == ""  # the session file is ignored, nothing else left


def test_the_spinner_glyph_cycles_while_working(spawn) -> None:
    sim = spawn("--no-trust", "--auto-approve")
    sim.expect("> ")
    sim.send("/sleep 0.6\r")
    sim.expect("⏺ Done.")
    glyphs = [
        line[0] for line in sim.output.split("\r\x1b[2K") if line.endswith("Working… (esc to interrupt)")
    ]
    assert len(set(glyphs)) >= 4


def test_permission_prompt_answered_1_makes_the_edit(spawn, git_repo: Path) -> None:
    sim = spawn("--no-trust")
    sim.expect("> ")
    sim.paste("/edit notes.txt hello\n/commit add notes")
    sim.send("\r")
    sim.expect("Do you want to make this edit to notes.txt?\r\n")
    sim.expect(f"❯ 1. {EDIT_OPTIONS[0]}\r\n  2. {EDIT_OPTIONS[1]}\r\n  3. {EDIT_OPTIONS[2]}\r\n")
    sim.send("1")
    sim.expect("Wrote 1 line to notes.txt")
    sim.expect("⏺ Done. edited notes.txt; committed")
    assert (git_repo / "notes.txt").read_text() == "hello\n"
    assert commits(git_repo)[0] == "add notes"


def test_permission_prompt_answered_3_refuses_the_edit_and_ends_the_turn(spawn, git_repo: Path) -> None:
    sim = spawn("--no-trust")
    sim.expect("> ")
    sim.send("/edit notes.txt hello\r")
    sim.expect("Do you want to make this edit to notes.txt?")
    sim.send("3")
    sim.expect("User rejected the edit to notes.txt")
    sim.expect("Stopped: the edit to notes.txt was refused.")
    sim.expect("\r\n> ")
    assert not (git_repo / "notes.txt").exists()


def test_allow_all_edits_stops_asking_for_the_session(spawn, git_repo: Path) -> None:
    sim = spawn("--no-trust")
    sim.expect("> ")
    sim.send("/edit a.txt one\r")
    sim.expect("Do you want to make this edit to a.txt?")
    sim.send("2")
    sim.expect("⏺ Done. edited a.txt.")
    sim.send("/edit b.txt two\r")
    sim.expect("⏺ Done. edited b.txt.")
    assert sim.output.count("Do you want to make this edit") == 1


def test_a_10kb_single_line_prompt_arrives_intact(spawn, tmp_path: Path) -> None:
    record = tmp_path / "prompts.jsonl"
    prompt = "/echo " + "".join(f"word{i:05d} " for i in range(1100)).strip()
    assert len(prompt) > 10_000
    sim = spawn("--no-trust", "--record", str(record))
    sim.expect("> ")
    sim.send(prompt + "\r")
    sim.expect("⏺ Done.", timeout=20)
    (entry,) = records(record)
    assert entry["sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
    assert entry["bytes"] == len(prompt)


def test_a_multiline_paste_with_quotes_dollars_backticks_and_unicode_is_one_prompt(
    spawn, tmp_path: Path
) -> None:
    record = tmp_path / "prompts.jsonl"
    prompt = "/echo start\nline with \"double\" and 'single' quotes\n"
    prompt += "$HOME `whoami` $(id) \\n\nunicode → ✓ é 日本\n"
    prompt += "x" * 5000
    sim = spawn("--no-trust", "--record", str(record))
    sim.expect("> ")
    sim.paste(prompt)
    sim.expect("[Pasted text #1 +4 lines]")
    sim.send("\r")
    sim.expect("⏺ start")
    sim.expect("⏺ Done.")
    (entry,) = records(record)
    assert entry["text"] == prompt
    assert entry["sha256"] == hashlib.sha256(prompt.encode()).hexdigest()


def test_input_typed_while_working_is_kept_for_the_next_prompt(spawn, tmp_path: Path) -> None:
    record = tmp_path / "prompts.jsonl"
    sim = spawn("--no-trust", "--record", str(record))
    sim.expect("> ")
    sim.send("/sleep 0.5\r")
    sim.expect("Working…")
    sim.send("/echo typed ahead\r")
    sim.expect("⏺ typed ahead")
    assert [e["text"] for e in records(record)] == ["/sleep 0.5", "/echo typed ahead"]


def test_backspace_and_ctrl_u_edit_the_prompt(spawn, tmp_path: Path) -> None:
    record = tmp_path / "prompts.jsonl"
    sim = spawn("--no-trust", "--record", str(record))
    sim.expect("> ")
    sim.send("garbage\x15/echo helo\x7flo\r")
    sim.expect("⏺ hello")
    assert records(record)[0]["text"] == "/echo hello"


def test_the_question_waits_for_y_or_n(spawn) -> None:
    sim = spawn("--no-trust", "--auto-approve")
    sim.expect("> ")
    sim.paste("/ask\n/echo after yes")
    sim.send("\r")
    sim.expect("Would you like to proceed? (Y)es/(N)o")
    sim.send("y")
    sim.expect("⏺ after yes")
    sim.paste("/ask\n/echo never")
    sim.send("\r")
    sim.expect("Would you like to proceed? (Y)es/(N)o")
    sim.send("n")
    sim.expect("Okay, I won't proceed.")
    sim.expect("\r\n> ")
    assert "⏺ never" not in sim.output


def test_esc_interrupts_a_turn(spawn) -> None:
    sim = spawn("--no-trust")
    sim.expect("> ")
    sim.paste("/sleep 30\n/echo not reached")
    sim.send("\r")
    sim.expect("Working…")
    sim.send("\x1b")
    sim.expect("Interrupted by user")
    sim.expect("\r\n> ")
    assert "⏺ not reached" not in sim.output


def test_ctrl_d_on_an_empty_prompt_exits_0(spawn) -> None:
    sim = spawn("--no-trust")
    sim.expect("> ")
    sim.send("\x04")
    assert sim.wait() == 0


def test_exit_directive_exits_with_its_status(spawn) -> None:
    sim = spawn("--no-trust")
    sim.expect("> ")
    sim.send("/exit 7\r")
    assert sim.wait() == 7


def test_sigterm_exits_143_quietly(spawn) -> None:
    sim = spawn("--no-trust")
    sim.expect("> ")
    os.kill(sim.pid, signal.SIGTERM)
    assert sim.wait() == 143
    assert "Traceback" not in sim.output


def test_a_first_prompt_on_the_command_line_runs_at_start(spawn, git_repo: Path) -> None:
    sim = spawn("--no-trust", "--auto-approve", "write the docs")
    sim.expect("⏺ Done. edited sim/work.txt")
    sim.expect("\r\n> ")
    assert commits(git_repo)[0] == "sim: write the docs"


def test_a_scenario_runs_its_steps_at_start_and_scripts_turns(spawn, git_repo: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text('steps = ["/echo from the scenario"]\nturns = [["/echo scripted turn"]]\n')
    sim = spawn("--no-trust", "--scenario", str(scenario))
    sim.expect("⏺ from the scenario")
    sim.expect("\r\n> ")
    sim.send("anything\r")
    sim.expect("⏺ scripted turn")
    sim.send("/echo own turn\r")
    sim.expect("⏺ own turn")


def test_resume_with_an_unknown_session_exits_1(spawn) -> None:
    sim = spawn("--no-trust", "--resume", "no-such-session")
    sim.expect("No conversation found with session ID: no-such-session")
    assert sim.wait() == 1
