"""The dashboard end to end, as a person uses it: `corral dashboard` in a terminal (a tmux server of the
test's own, not corral's), a real daemon, corral-sim agents on corral's (private) tmux server and in PTYs;
driven by keys (send-keys), read off the screen (capture-pane)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.runtimes.tmux_server import TmuxServer
from frontends.daemon import DaemonClient
from tests.daemon_kit import daemons_of, hearts_of, stop_everything
from tests.integration.cli_kit import fails, ok
from tests.integration.dashboard_kit import SIM, Dashboard, wait_for

STATUS_BAR = "corral  proj"  # the dashboard's first line (the repository is called proj)


class Env:
    def __init__(self, runtime_dir: Path, socket: str) -> None:
        self.client = DaemonClient(runtime_dir)
        self.tmux = TmuxServer(socket)


@pytest.fixture
def env(corral_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    parent = Path(tempfile.mkdtemp(prefix="crl-d-", dir="/tmp"))
    runtime_dir = parent / "run"
    socket = f"corral-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(runtime_dir))
    monkeypatch.setenv("CORRAL_TMUX_SOCKET", socket)
    monkeypatch.setenv("CORRAL_AUTOSTART", "1")
    made = Env(runtime_dir, socket)
    yield made
    try:
        stop_everything(runtime_dir)
    finally:
        made.tmux.kill()
        shutil.rmtree(parent, ignore_errors=True)


def instance(env: Env, repo: Path, title: str) -> dict[str, Any]:
    return env.client.call("GET", f"/v1/repos/{repo.name}/instances/{title}", timeout=20)


def wait_status(env: Env, repo: Path, title: str, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        view = instance(env, repo, title)
        return view if view["status"] in statuses else None

    return wait_for(reached, 60, f"{title} to be {' or '.join(statuses)}")


def start(repo: Path, title: str, *args: str) -> None:
    ok(repo, "instance", "start", title, "--program", SIM, *args)


def sidebar(screen: str) -> list[str]:
    """The sidebar's rows: the left column of every line below the status bar, stripped."""
    return [line.split("│")[0].strip() for line in screen.splitlines()[1:] if "│" in line]


def selected(screen: str) -> str:
    """The selected sidebar row (marked ›), without its marker."""
    return next((row.removeprefix("›").strip() for row in sidebar(screen) if row.startswith("›")), "")


def select(dash: Dashboard, title: str) -> str:
    """Move the selection down until it is on `title`'s row; returns the screen."""
    for _ in range(20):
        screen = dash.screen()
        if title in selected(screen).split():
            return screen
        before = selected(screen)
        dash.keys("Down")
        dash.wait_for(lambda s, before=before: selected(s) != before or None, 10, "the selection to move")
    raise AssertionError(f"{title} never selected:\n{dash.screen()}")


def attached(screen: str) -> bool:
    """The agent's own screen fills the terminal: its banner shows, the dashboard's status bar does not."""
    return "corral-sim" in screen and STATUS_BAR not in screen


def test_navigate_between_tasks_and_agents_with_their_screen_diff_and_info(env: Env, git_repo: Path) -> None:
    ok(git_repo, "task", "create", "fix-login", "--title", "Fix login", "--topic", "auth")
    start(git_repo, "alpha")
    start(git_repo, "beta", "--mode", "pty")
    wait_status(env, git_repo, "alpha", "ready")
    with Dashboard.open(git_repo) as dash:
        screen = dash.wait_for("beta")
        rows = sidebar(screen)
        assert any("fix-login" in r for r in rows) and any("auth" in r for r in rows)
        screen = select(dash, "alpha")
        dash.wait_for(
            lambda s: "corral-sim" in s.split("│", 1)[-1] or None, 20, "alpha's screen in the preview"
        )
        dash.keys("Tab")  # Diff
        dash.keys("Tab")  # Info
        info = dash.wait_for("corral/alpha", what="alpha's branch in the info pane")
        assert "tmux" in info
        select(dash, "beta")
        dash.wait_for("corral/beta", what="beta's info after moving")
        dash.keys("Up")
        dash.wait_for(lambda s: "alpha" in selected(s).split() or None, 10, "alpha selected again")
    base = f"/v1/repos/{git_repo.name}/instances"
    status, body = env.client.request("GET", f"{base}/alpha/attach")  # the pty proxy: not for tmux agents
    assert status == 409 and "tmux" in body["error"]
    assert env.client.request("GET", f"{base}/nothing-like-it/attach")[0] == 404


@pytest.mark.parametrize("outer_tmux", [True, False], ids=["inside-the-persons-tmux", "plain-terminal"])
def test_attach_fullscreen_and_detach_with_ctrl_q(env: Env, git_repo: Path, outer_tmux: bool) -> None:
    start(git_repo, "alpha")
    wait_status(env, git_repo, "alpha", "ready")
    with Dashboard.open(git_repo, outer_tmux=outer_tmux) as dash:
        dash.wait_for("alpha")
        select(dash, "alpha")
        dash.keys("Enter")
        dash.wait_for("ctrl+q or ctrl+space detaches")  # the one-time help
        dash.keys("Enter")
        dash.wait_for(attached, what="the agent's own screen, the whole terminal")
        dash.type("/echo from-the-attached-terminal")
        dash.keys("Enter")
        dash.wait_for("from-the-attached-terminal")
        dash.keys("C-q")
        dash.wait_for(STATUS_BAR)
        assert dash.exited() is None
        dash.keys("Enter")  # the help is not shown again: straight to the agent
        dash.wait_for(attached, what="the agent's screen again")
        dash.keys("C-Space")
        dash.wait_for(STATUS_BAR)
    assert instance(env, git_repo, "alpha")["status"] in ("ready", "running")  # detaching kept it running
    assert env.tmux.list_sessions()  # and its session


def test_a_pty_agent_is_attached_through_the_daemon(env: Env, git_repo: Path) -> None:
    start(git_repo, "beta", "--mode", "pty")
    wait_status(env, git_repo, "beta", "ready")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("beta")
        select(dash, "beta")
        dash.keys("Enter")
        dash.wait_for("ctrl+q or ctrl+space detaches")
        dash.keys("Enter")
        dash.wait_for(attached, what="the agent's screen, proxied")
        dash.type("/echo typed-through-the-daemon")
        dash.keys("Enter")
        dash.wait_for("typed-through-the-daemon")
        dash.keys("C-q")
        dash.wait_for(STATUS_BAR)
    captured = env.client.call(
        "POST", f"/v1/repos/{git_repo.name}/instances/beta/capture", json={"lines": 50}, timeout=20
    )
    assert "typed-through-the-daemon" in captured["text"]


@pytest.mark.parametrize("mode", ["tmux", "pty"])
def test_interactive_typing_reaches_the_agent(env: Env, git_repo: Path, mode: str) -> None:
    start(git_repo, "alpha", "--mode", mode)
    wait_status(env, git_repo, "alpha", "ready")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("alpha")
        select(dash, "alpha")
        dash.keys("i")
        dash.type("/echo one; two #3")  # ; and # are what tmux would read as syntax
        dash.keys("Enter")
        dash.keys("C-Space")  # leaves interactive mode
        dash.wait_for("one; two #3", what="the agent's answer in the preview")

    def answered() -> bool:
        text = env.client.call(
            "POST", f"/v1/repos/{git_repo.name}/instances/alpha/capture", json={"lines": 50}, timeout=20
        )["text"]
        return "⏺ one; two #3" in text  # the agent's answer, not only the echo of the typed line

    wait_for(answered, 20, "the agent to have echoed the typed line")


def test_pause_resume_and_kill(env: Env, git_repo: Path) -> None:
    start(git_repo, "alpha")
    wait_status(env, git_repo, "alpha", "ready")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("alpha")
        select(dash, "alpha")
        dash.keys("K")
        dash.wait_for("paused alpha")  # the toast
        wait_status(env, git_repo, "alpha", "paused")
        dash.wait_for(lambda s: any("‖" in r for r in sidebar(s) if "alpha" in r) or None, 20, "alpha paused")
        dash.keys("r")
        wait_status(env, git_repo, "alpha", "loading", "running", "ready")
        wait_status(env, git_repo, "alpha", "ready")
        dash.keys("k")
        dash.wait_for("Kill alpha?")
        dash.keys("y")
        wait_status(env, git_repo, "alpha", "exited")
        screen = dash.wait_for(lambda s: any("□" in r for r in sidebar(s) if "alpha" in r) and s, 20,
                               "alpha shown ended")  # fmt: skip
        assert "alpha" in " ".join(sidebar(screen))  # the row stays


def test_rename_an_agent_that_goes_on_under_its_new_title(env: Env, git_repo: Path) -> None:
    start(git_repo, "alpha")
    wait_status(env, git_repo, "alpha", "ready")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("alpha")
        select(dash, "alpha")
        dash.keys("e")
        dash.wait_for("Rename alpha")
        for _ in "alpha":
            dash.keys("BSpace")
        dash.type("omega")
        dash.keys("Enter")
        dash.wait_for("renamed alpha to omega")
        screen = dash.wait_for(lambda s: "omega" in selected(s).split() and s, 20, "omega selected")
        assert "alpha" not in " ".join(sidebar(screen))
    renamed = wait_status(env, git_repo, "omega", "ready", "running")
    assert env.client.request("GET", f"/v1/repos/{git_repo.name}/instances/alpha")[0] == 404
    assert renamed["title"] == "omega"


def test_search_and_sort(env: Env, git_repo: Path) -> None:
    start(git_repo, "zeta")
    start(git_repo, "alpha")
    start(git_repo, "beta")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("beta")
        dash.keys("/")
        dash.type("bet")
        dash.keys("Enter")
        screen = dash.wait_gone("zeta")
        assert "beta" in " ".join(sidebar(screen)) and "alpha" not in " ".join(sidebar(screen))
        dash.keys("/")
        dash.keys("Escape")  # clears the search
        dash.wait_for("zeta")

        def order(screen: str) -> list[str]:
            names = ("alpha", "beta", "zeta")
            return [n for row in sidebar(screen) for n in names if n in row.split()]

        for _ in range(3):
            bar = dash.screen().splitlines()[0]
            if "sort: name" in bar:
                break
            dash.keys("3")
            dash.wait_for(lambda s, bar=bar: s.splitlines()[0] != bar or None, 10, "the sort to change")
        screen = dash.wait_for("sort: name")
        assert order(screen) == ["alpha", "beta", "zeta"]
        dash.keys("3")
        screen = dash.wait_for("sort: created")
        assert order(screen) == ["zeta", "alpha", "beta"]


def test_quitting_leaves_the_agents_running_and_two_dashboards_run_at_once(env: Env, git_repo: Path) -> None:
    start(git_repo, "alpha")
    wait_status(env, git_repo, "alpha", "ready")
    with Dashboard.open(git_repo) as first, Dashboard.open(git_repo) as second:
        first.wait_for("alpha")
        second.wait_for("alpha")
        first.keys("q")
        first.wait_for("Quit")  # asks, since an agent runs
        first.keys("y")
        first.wait_for("[dashboard exited: 0]")
        assert second.exited() is None and "alpha" in second.screen()
    assert instance(env, git_repo, "alpha")["status"] == "ready"


def test_the_daemon_lost_shows_a_banner_and_the_dashboard_reconnects(env: Env, git_repo: Path) -> None:
    start(git_repo, "alpha")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("alpha")
        env.client.stop()
        banner = dash.wait_for("reconnecting")
        assert "alpha" in banner  # the last known rows stay
        ok(git_repo, "daemon", "start")
        dash.wait_gone("reconnecting")
        start(git_repo, "beta")  # and it is live again: a new agent shows
        dash.wait_for("beta")


def test_the_daemon_killed_shows_a_banner_until_its_heart_brings_it_back(env: Env, git_repo: Path) -> None:
    start(git_repo, "alpha")
    wait_status(env, git_repo, "alpha", "ready")
    runtime_dir = env.client.paths.dir
    (heart,) = hearts_of(runtime_dir)
    (daemon,) = daemons_of(runtime_dir)
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("alpha")
        os.kill(heart, signal.SIGSTOP)  # a slow heart: the dashboard is without a daemon for a while
        try:
            os.kill(daemon, signal.SIGKILL)
            dash.wait_for("reconnecting")
            assert dash.exited() is None
        finally:
            os.kill(heart, signal.SIGCONT)  # it notices the daemon's death and starts a new one
        dash.wait_gone("reconnecting", timeout=60)
        assert daemons_of(runtime_dir) != [daemon]
        dash.wait_for("alpha")
        select(dash, "alpha")
        dash.wait_for(lambda s: "corral-sim" in s.split("│", 1)[-1] or None, 30, "alpha's screen, re-adopted")
    assert instance(env, git_repo, "alpha")["status"] == "ready"  # the tmux agent lived through it


def test_a_resized_terminal_is_redrawn_whole_at_its_new_size(env: Env, git_repo: Path) -> None:
    start(git_repo, "alpha")
    with Dashboard.open(git_repo, width=200, height=60) as dash:
        dash.wait_for("alpha")
        for width, height in ((80, 24), (300, 100), (120, 40)):
            dash.resize(width, height)

            def fits(screen: str, width: int = width, height: int = height) -> str | None:
                lines = screen.split("\n")[:-1]  # capture-pane ends the last line with a newline too
                bar, help_line = lines[0], lines[-1]
                ok = len(lines) == height and STATUS_BAR in bar and "enter attach" in help_line
                return screen if ok and bar.rstrip().endswith("live") and len(bar.rstrip()) <= width else None

            screen = dash.wait_for(fits, 20, f"a whole frame at {width}×{height}")
            assert "alpha" in " ".join(sidebar(screen))


def test_corral_alone_opens_the_dashboard_and_starts_the_daemon(env: Env, git_repo: Path) -> None:
    assert env.client.ping() is None
    with Dashboard.open(git_repo, args=()) as dash:
        dash.wait_for(STATUS_BAR)
        dash.wait_gone("connecting")
    assert env.client.ping() is not None


def test_y_answers_a_permission_prompt_and_the_wait_is_notified(
    env: Env, git_repo: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    said = tmp_path / "notified.txt"
    stand_in = bin_dir / "notify-send"  # the desktop is what cannot run here: a stand-in records the call
    stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {said}\n')
    stand_in.chmod(0o755)
    start(git_repo, "alpha", "--prompt", "/edit a.txt hi")
    path = f"{bin_dir}:{os.environ['PATH']}"
    with Dashboard.open(git_repo, extra_env={"PATH": path}) as dash:
        dash.wait_for("alpha")
        waiting = wait_status(env, git_repo, "alpha", "waiting")
        assert "permission" in waiting["reason"]
        dash.wait_for(lambda s: any("◆" in r for r in sidebar(s) if "alpha" in r) or None, 20, "alpha ◆")
        dash.wait_for("1. Yes", what="the prompt on the agent's screen, in the preview")
        dash.keys("y")
        wait_status(env, git_repo, "alpha", "ready", "running")
        worktree = Path(waiting["worktree"])
        wait_for(lambda: (worktree / "a.txt").exists(), 20, "the edit the prompt allowed")
    # The dashboard opened before the agent reached its prompt: the wait reached it as an event.
    if "waits for you" not in (said.read_text() if said.exists() else ""):
        pytest.fail(
            f"no notification of the wait; notify-send got: {said.read_text() if said.exists() else ''}"
        )
    assert "alpha waits for you: permission" in said.read_text()


def test_sigterm_ends_the_dashboard_and_gives_the_terminal_back(env: Env, git_repo: Path) -> None:
    start(git_repo, "alpha")
    with Dashboard.open(git_repo) as dash:
        dash.wait_for("alpha")
        shell = int(dash.tmux("display-message", "-p", "-t", dash.session, "#{pane_pid}").stdout)
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGTERM)
        screen = dash.wait_for("[dashboard exited: 0]")
        assert STATUS_BAR not in screen  # the normal screen is back, the dashboard's frame gone
        modes = dash.tmux("display-message", "-p", "-t", dash.session, "#{alternate_on} #{cursor_flag}")
        assert modes.stdout.split() == ["0", "1"]  # out of the alternate screen, the cursor shown
    assert instance(env, git_repo, "alpha")["status"] in ("loading", "ready", "running")


def test_without_a_terminal_the_dashboard_says_it_needs_one(env: Env, git_repo: Path) -> None:
    assert fails(git_repo, 2, "dashboard") == (
        "the dashboard needs a terminal: run it in one (corral instance list shows the agents)"
    )
    assert env.client.ping() is None  # and nothing was started for it
    help_text = ok(git_repo, "dashboard", "--help")
    assert "ctrl-q" in help_text and "examples:" in help_text and "--no-notify" in help_text


def test_project_named_from_outside_the_repository_and_a_wrong_name(
    env: Env, git_repo: Path, tmp_path: Path
) -> None:
    start(git_repo, "alpha")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with Dashboard.open(elsewhere, args=("--project", "proj")) as dash:
        dash.wait_for("alpha")
    with Dashboard.open(elsewhere, args=("--project", "nope")) as dash:
        screen = dash.wait_for("[dashboard exited: 1]")
        assert "corral: error: no project nope (projects: proj); or give a path inside it" in screen
    with Dashboard.open(elsewhere) as dash:
        screen = dash.wait_for("[dashboard exited: 2]")
        assert "corral: error: corral must be run from within a git repository" in screen
