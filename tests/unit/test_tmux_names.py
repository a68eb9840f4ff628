"""The pure parts of the tmux runtime: session names, argv escaping, formats, errors, pane records."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.runtimes.base import valid_session_name
from actors.runtimes.tmux_server import (
    PaneInfo,
    SessionExists,
    TmuxError,
    TmuxServer,
    _arg,
    format_literal,
    pipe_command,
    session_name,
)
from protocols.errors import CorralError, UsageError


def test_session_names_keep_safe_titles_as_they_are() -> None:
    assert session_name("web", "fix-login") == "corral_web_fix-login"
    assert session_name("api2", "Task-7") == "corral_api2_Task-7"


def test_other_characters_are_slugged_with_a_hash_of_the_original() -> None:
    name = session_name("my proj", "Fix the login/logout bug!")
    assert re.fullmatch(r"corral_my-proj-[0-9a-f]{6}_Fix-the-login-logout-bug-[0-9a-f]{6}", name)
    assert session_name("café", "x").startswith("corral_cafe-")


def test_titles_that_slug_alike_still_get_different_sessions() -> None:
    names = {session_name("p", t) for t in ("a b", "a/b", "a-b", "a_b", "a  b", "a.b")}
    assert len(names) == 6


def test_underscore_only_separates_the_parts() -> None:
    assert session_name("a_b", "c") != session_name("a", "b_c")
    assert session_name("a_b", "c").count("_") == 2


def test_a_name_is_the_same_on_every_call() -> None:
    assert session_name("p", "Fix login ✓") == session_name("p", "Fix login ✓")


@given(st.text(max_size=80), st.text(max_size=200))
def test_every_session_name_is_a_valid_runtime_name(project: str, title: str) -> None:
    name = session_name(project, title)
    assert valid_session_name(name) == name
    assert len(name) <= 7 + 2 * (40 + 7) + 1


def test_an_argument_ending_in_a_semicolon_cannot_end_a_tmux_command() -> None:
    assert _arg("x;") == "x\\;"
    assert _arg(";") == "\\;"
    assert _arg("y\\;") == "y\\\\;"  # tmux turns a trailing "\\;" into ";", so "y\\;" comes back as "y\\;"
    assert _arg("a;b") == "a;b"  # only a trailing one separates


def test_format_literal_doubles_hashes() -> None:
    assert format_literal("/src/#{pane_id}/#(rm -rf ~)") == "/src/##{pane_id}/##(rm -rf ~)"


def test_the_pipe_command_quotes_the_fifo_for_the_shell_and_for_formats() -> None:
    command = pipe_command(Path("/run/x y/it's #1.fifo"))
    assert command.startswith("exec cat >> ")
    unformatted = command.replace("##", "#")
    assert shlex.split(unformatted) == ["exec", "cat", ">>", "/run/x y/it's #1.fifo"]


def test_tmux_errors_quote_the_command_and_know_a_missing_target() -> None:
    err = TmuxError(["tmux", "-L", "s", "has-session", "-t", "=x"], 1, "can't find session: x\n")
    assert isinstance(err, CorralError) and err.gone
    assert (
        "exit status 1" in str(err) and "has-session -t =x" in str(err) and "can't find session" in str(err)
    )
    assert not TmuxError(["tmux"], 1, "unknown command: foo").gone
    assert "timed out" in str(TmuxError(["tmux"], None, "no answer within 5 s"))
    assert issubclass(SessionExists, TmuxError)


def test_pane_records_parse_live_and_dead_panes() -> None:
    live = PaneInfo.parse("%3\tcorral_p_t\t$2\t4242\t0\t\t")
    assert (live.pane_id, live.session, live.pid, live.dead, live.dead_status) == (
        "%3",
        "corral_p_t",
        4242,
        False,
        None,
    )
    dead = PaneInfo.parse("%3\tcorral_p_t\t$2\t4242\t1\t\t9")
    assert dead.dead and dead.dead_status is None and dead.dead_signal == 9


def test_a_socket_name_is_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="socket"):
        TmuxServer("bad name;", run_dir=tmp_path)
    server = TmuxServer("corral-x", run_dir=tmp_path)
    assert server.argv("ls") == ["tmux", "-L", "corral-x", "-f", "/dev/null", "ls"]
