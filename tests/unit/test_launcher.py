"""actors.launcher: the conversation id a tmux or pty agent is launched with, shown before it says one."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from actors.launcher import AgentRequest, prepare_instance
from actors.resources import ResourceControls
from protocols.config import Config, ResourceSettings


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A PATH holding programs named claude and codex (never run: the launch is only prepared)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("claude", "codex"):
        program = bin_dir / name
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
    return str(bin_dir)


def prepare(tmp_path: Path, path: str, program: str, mode: str = "tmux", flags: tuple[str, ...] = ()):
    request = AgentRequest(
        project="proj",
        repo_root=str(tmp_path),
        title="t",
        program=program,
        mode=mode,
        flags=flags,
        worktree="none",
    )
    controls = ResourceControls(ResourceSettings(profile="none"))
    return prepare_instance(request, Config(), controls, base_env={"PATH": path}).spec


def test_claude_in_tmux_or_pty_is_launched_with_a_conversation_id_corral_shows(
    tmp_path: Path, path: str
) -> None:
    for mode in ("tmux", "pty"):
        spec = prepare(tmp_path, path, "claude", mode)
        assert uuid.UUID(spec.conversation_id).version == 4
        argv = spec.runtime.argv
        assert argv[argv.index("--session-id") + 1] == spec.conversation_id
        assert "--continue" in spec.restart_argv and "--session-id" not in spec.restart_argv
    assert prepare(tmp_path, path, "claude").conversation_id != spec.conversation_id  # one per launch


def test_no_conversation_id_where_the_program_takes_none_or_its_flags_choose(
    tmp_path: Path, path: str
) -> None:
    assert prepare(tmp_path, path, "codex").conversation_id == ""  # the TUI takes no id at launch
    assert prepare(tmp_path, path, "claude", "sdk").conversation_id == ""  # the transport reports it
    for flags in (("--resume", "abc"), ("--continue",), ("--session-id=abc",)):
        spec = prepare(tmp_path, path, "claude", flags=flags)
        assert spec.conversation_id == "" and spec.runtime.argv.count("--session-id") == 0
    assert prepare(tmp_path, path, "claude -c").conversation_id == ""
