"""The simulated agent's turns, on a real git repository, through a surface that records what it is told
and answers permission and questions from a script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import pytest

from frontends.sim import faults
from frontends.sim.behaviour.agent import QUESTION, Agent, Approval, Outcome, Tool
from frontends.sim.behaviour.workspace import Workspace, WorkspaceError
from frontends.sim.options import ENV, UsageError, parse_options
from frontends.sim.state import SessionStore
from tests.conftest import GIT_ENV, git


class ScriptedSurface:
    """A Surface that writes down every call and answers from `approvals` and `answers`."""

    def __init__(
        self, approvals: list[Approval] | None = None, answers: list[bool | None] | None = None
    ) -> None:
        self.events: list[tuple[str, str]] = []
        self.approvals = approvals or []
        self.answers = answers or []
        self.outcomes: list[Outcome] = []

    def begin(self, prompt: str) -> None:
        self.events.append(("begin", prompt))

    def say(self, text: str) -> None:
        self.events.append(("say", text))

    def tool_started(self, tool: Tool) -> None:
        self.events.append(("tool", tool.title))

    def approve(self, tool: Tool) -> Approval:
        self.events.append(("approve", tool.title))
        return self.approvals.pop(0) if self.approvals else Approval.ALLOW

    def tool_finished(self, tool: Tool, status: str, output: str) -> None:
        self.events.append((status, output))

    def ask(self, question: str) -> bool | None:
        self.events.append(("ask", question))
        return self.answers.pop(0)

    def sleep(self, seconds: float) -> bool:
        return True

    def interrupted(self) -> bool:
        return False

    def flood(self, megabytes: float) -> None:
        self.events.append(("flood", str(megabytes)))

    def fail(self, message: str, *, auth: bool = False) -> None:
        self.events.append(("fail", message))

    def hang(self, hard: bool) -> NoReturn:
        raise AssertionError("no hang in these tests")

    def ignore_input(self) -> None:
        self.events.append(("ignore", ""))

    def end(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def said(self) -> list[str]:
        return [text for kind, text in self.events if kind == "say"]


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return git_repo


def agent(repo: Path, surface: ScriptedSurface, **kwargs: object) -> Agent:
    return Agent(Workspace(repo, task="fix-login"), surface, think_s=0, **kwargs)  # type: ignore[arg-type]


def test_a_plain_prompt_appends_to_the_task_file_and_commits_only_it(repo: Path) -> None:
    (repo / "README.md").write_text("changed by someone else\n")
    git(repo, "add", "README.md")
    surface = ScriptedSurface()
    outcome = agent(repo, surface).run_turn("Fix the login form\nwith care")
    assert outcome.status == "completed"
    assert outcome.text.startswith("Done. edited sim/fix-login.txt; committed ")
    assert (repo / "sim" / "fix-login.txt").read_text() == "turn 1: Fix the login form with care\n"
    assert git(repo, "log", "-1", "--format=%s").strip() == "sim: Fix the login form with care"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["sim/fix-login.txt"]
    assert git(repo, "diff", "--cached", "--name-only").strip() == "README.md"  # left staged, not committed


def test_a_refused_edit_ends_the_turn_and_drops_the_rest(repo: Path) -> None:
    surface = ScriptedSurface(approvals=[Approval.DENY])
    outcome = agent(repo, surface).run_turn("/edit a.txt x\n/echo after")
    assert outcome == Outcome(
        "completed", "Stopped: the edit to a.txt was refused. What should I do instead?"
    )
    assert ("declined", "User rejected the edit to a.txt") in surface.events
    assert "after" not in surface.said()
    assert not (repo / "a.txt").exists()


def test_cancel_at_a_permission_prompt_interrupts_the_turn(repo: Path) -> None:
    surface = ScriptedSurface(approvals=[Approval.CANCEL])
    assert agent(repo, surface).run_turn("/run echo hi").status == "interrupted"


def test_an_unanswered_question_keeps_the_rest_for_the_next_prompt(repo: Path) -> None:
    surface = ScriptedSurface(answers=[None, None])
    sim = agent(repo, surface)
    assert sim.run_turn("/ask\n/echo went on").text == QUESTION
    sim.run_turn("yes")
    assert surface.said() == ["Proceeding.", "went on"]
    assert sim.run_turn("/ask Deploy?\n/echo deployed").text == "Deploy? (Y)es/(N)o"
    sim.run_turn("no")
    assert "deployed" not in surface.said()


def test_a_no_answer_ends_the_turn(repo: Path) -> None:
    surface = ScriptedSurface(answers=[False])
    assert agent(repo, surface).run_turn("/ask\n/echo never").text == "Okay, I won't proceed."
    assert "never" not in surface.said()


def test_an_edit_outside_the_workspace_is_refused(repo: Path) -> None:
    surface = ScriptedSurface()
    agent(repo, surface).run_turn("/edit ../escape.txt x\n/edit /etc/passwd x")
    assert any("is outside" in text for text in surface.said())
    assert any("give a path relative to" in text for text in surface.said())
    assert not (repo.parent / "escape.txt").exists()
    with pytest.raises(WorkspaceError):
        Workspace(repo).resolve("a/../../b")


def test_unknown_directives_and_bad_arguments_are_said_not_fatal(repo: Path) -> None:
    surface = ScriptedSurface()
    outcome = agent(repo, surface).run_turn("/frob\n/sleep soon\n/flood lots\n/crash NOSUCHSIGNAL\n/echo ok")
    assert outcome.status == "completed"
    said = surface.said()
    assert said[0].startswith("Unknown directive /frob.")
    assert said[-1] == "ok"


def test_commit_with_nothing_edited_fails_the_command_not_the_turn(repo: Path) -> None:
    surface = ScriptedSurface()
    assert agent(repo, surface).run_turn("/commit nothing\n/echo on").status == "completed"
    assert ("failed", "nothing to commit") in surface.events


def test_steered_input_runs_after_the_current_steps(repo: Path) -> None:
    surface = ScriptedSurface()
    sim = agent(repo, surface)
    sim.steer("/echo steered")
    sim.run_turn("/echo first")
    assert surface.said() == ["first", "steered"]


def test_the_record_file_has_every_prompt_with_its_sha256(repo: Path, tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    sim = agent(repo, ScriptedSurface(), record=str(record))
    sim.run_turn("/echo a → b")
    (entry,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert entry["text"] == "/echo a → b"
    assert entry["bytes"] == len("/echo a → b".encode())
    assert len(entry["sha256"]) == 64


def test_options_come_from_flags_then_the_environment() -> None:
    options, _ = parse_options(
        ["--crash-after", "2", "hello", "world"], {ENV["crash_after"]: "9", ENV["hang"]: "1"}
    )
    assert (options.mode, options.prompt, options.crash_after_s, options.hang) == (
        "interactive",
        "hello world",
        2.0,
        True,
    )
    assert parse_options(["app-server", "-c", "model=x"], {})[0].mode == "app-server"
    printed, _ = parse_options(["-p", "--resume", "abc", "--dangerously-skip-permissions"], {})
    assert (printed.mode, printed.resume, printed.skip_permissions, printed.trust) == (
        "print",
        "abc",
        True,
        False,
    )


def test_a_first_prompt_from_a_file(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("line one\nline → two\n", encoding="utf-8")
    assert parse_options(["--prompt-file", str(prompt)], {})[0].prompt == "line one\nline → two\n"
    assert parse_options(["--prompt", "given", "ignored words"], {})[0].prompt == "given"


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unrecognized arguments"):
        parse_options(["--no-such-flag"], {})
    with pytest.raises(UsageError, match="CORRAL_SIM_FLOOD"):
        parse_options([], {ENV["flood"]: "lots"})


def test_crash_arguments_and_signal_names() -> None:
    assert faults.parse_crash("") == (1, "")
    assert faults.parse_crash("137") == (137, "")
    assert faults.parse_crash("kill") == (1, "kill")
    assert faults.signal_number("SIGTERM") == faults.signal_number("term") == faults.signal_number("15") == 15
    with pytest.raises(ValueError, match="unknown signal"):
        faults.parse_crash("NOPE")


def test_flood_writes_exactly_the_bytes_asked_for() -> None:
    sizes: list[int] = []
    assert faults.flood(lambda piece: sizes.append(len(piece)), 0.3) == 300_000
    assert sum(sizes) == 300_000


def test_the_session_store_creates_counts_and_finds_the_latest(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "state")
    first = store.create("claude", cwd="/w")
    second = store.create("codex", "thread-1")
    assert store.record_turn(first, "hello") == 1
    assert store.get(second)["kind"] == "codex"  # type: ignore[index]
    assert store.get("nope") is None
    assert store.latest("claude") == first
    assert (tmp_path / "state" / ".gitignore").read_text() == "*\n"
