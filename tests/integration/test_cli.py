"""The `corral` entry point as a real process: version, help, usage errors, the project, start-up imports."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from frontends.cli import main as cli_main
from tests.conftest import git
from tests.integration.cli_kit import clean_env, corral

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_REPO = "corral: error: corral must be run from within a git repository\n"


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = corral(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout == f"corral {pyproject_version()}\n"


def test_version_fallback_matches_pyproject() -> None:
    assert pyproject_version() == cli_main._FALLBACK_VERSION


def test_help_lists_every_command_group_with_examples(tmp_path: Path) -> None:
    result = corral(tmp_path, "--help")
    assert result.returncode == 0
    for group in ("task", "signal", "doctor"):
        assert f"\n    {group} " in result.stdout
    assert "examples:" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["task"],
        ["task", "list"],
        ["task", "create"],
        ["task", "show"],
        ["task", "transition"],
        ["task", "set-status"],
        ["signal"],
        ["signal", "emit"],
        ["signal", "list"],
        ["doctor"],
    ],
)
def test_every_command_has_help_with_a_description_and_examples(tmp_path: Path, command: list[str]) -> None:
    result = corral(tmp_path, *command, "--help")
    assert result.returncode == 0, result.stderr
    usage, _, rest = result.stdout.partition("\n\n")
    assert usage.startswith(f"usage: corral {' '.join(command)}")
    assert rest.strip() and not rest.startswith("options:")  # a description comes first
    assert "examples:" in result.stdout


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = corral(tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: corral")
    assert "corral: error: the following arguments are required: COMMAND" in result.stderr


def test_unknown_command_is_a_usage_error_naming_the_choices(tmp_path: Path) -> None:
    result = corral(tmp_path, "tsak", "list")
    assert result.returncode == 2
    assert "corral: error: argument COMMAND: invalid choice: 'tsak'" in result.stderr


def test_missing_argument_names_the_subcommand_and_the_argument(tmp_path: Path) -> None:
    result = corral(tmp_path, "task", "create")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: corral task create")
    assert result.stderr.endswith("corral: error: task create: the following arguments are required: NAME\n")
    assert result.stdout == ""


def test_bad_option_value_is_a_usage_error(tmp_path: Path) -> None:
    result = corral(tmp_path, "signal", "list", "--limit", "0")
    assert result.returncode == 2
    assert "corral: error: signal list: argument --limit: must be at least 1, got 0" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["task", "list"],
        ["task", "create", "x"],
        ["task", "show", "x"],
        ["task", "transition", "x", "plan_start"],
        ["task", "set-status", "x", "done", "--force"],
        ["signal", "emit", "plan_start", "x"],
        ["signal", "list"],
    ],
)
def test_outside_a_repository_every_project_command_exits_2_without_touching_the_database(
    corral_home: Path, tmp_path: Path, command: list[str]
) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    result = corral(outside, *command)
    assert result.returncode == 2
    assert result.stderr == NOT_IN_REPO
    assert result.stdout == ""
    assert list(corral_home.iterdir()) == []


def test_unexpected_exception_is_reported_as_a_bug_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import frontends.project

    def explode(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("boom")

    monkeypatch.setattr(frontends.project, "find_project_root", explode)
    monkeypatch.delenv("CORRAL_DEBUG", raising=False)
    assert cli_main.main(["task", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("corral: error: unexpected RuntimeError: boom\n")
    assert "this is a bug" in err and "CORRAL_DEBUG=1" in err
    assert "Traceback" not in err


def test_corral_debug_shows_the_traceback_of_an_unexpected_exception(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import frontends.project

    def explode(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("boom")

    monkeypatch.setattr(frontends.project, "find_project_root", explode)
    monkeypatch.setenv("CORRAL_DEBUG", "1")
    assert cli_main.main(["task", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "this is a bug" in err


# --- the project: the main repository's root -----------------------------------------------------------


def test_commands_from_a_linked_worktree_work_on_the_main_repository_project(
    corral_home: Path, git_repo: Path, tmp_path: Path
) -> None:
    worktree = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", "wt", str(worktree))
    (worktree / "sub").mkdir()
    created = corral(worktree / "sub", "task", "create", "from-worktree")
    assert created.returncode == 0, created.stderr
    shown = corral(git_repo, "task", "show", "from-worktree")
    assert shown.returncode == 0, shown.stderr
    assert "project:" in shown.stdout and f" {git_repo.name}\n" in shown.stdout
    listed = json.loads(corral(worktree, "task", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["from-worktree"]


def test_a_command_registers_the_repository_as_a_project(corral_home: Path, git_repo: Path) -> None:
    assert corral(git_repo, "task", "list").returncode == 0
    from actors.store import Store

    with Store.open(corral_home / "corral.db") as store:
        projects = store.list_projects()
    assert [(p.name, Path(p.root)) for p in projects] == [(git_repo.name, git_repo.resolve())]


# --- start-up: what `corral signal emit` imports -------------------------------------------------------

_IMPORT_PROBE = """
import json, sys
from frontends.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

HEAVY = ("aiohttp", "pykka", "blessed")


def _modules_after(cwd: Path, *args: str) -> tuple[int, set[str]]:
    env = clean_env()
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    return report["code"], set(report["modules"])


def test_signal_emit_imports_no_aiohttp_pykka_or_blessed(corral_home: Path, git_repo: Path) -> None:
    assert corral(git_repo, "task", "create", "probe").returncode == 0
    code, modules = _modules_after(git_repo, "signal", "emit", "plan_start", "probe")
    assert code == 0
    loaded = {m for m in modules if m.split(".")[0] in HEAVY}
    assert loaded == set()
    assert "actors.store" in modules  # the probe really ran the command


def test_an_agents_emit_to_a_listening_daemon_loads_nothing_it_does_not_need(
    corral_home: Path, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path stays lean: no shutil (argparse's terminal width: ~5 ms with bz2 and lzma), no process
    spawning, no HTTP client — the poke reaches a listener, so nothing is started or asked — and no wave or
    plan parsing (~8 ms: the store's task listing imports it when it lists)."""
    from actors.wake import WakeListener

    assert corral(git_repo, "task", "create", "probe").returncode == 0
    monkeypatch.setenv("CORRAL_MANAGED", "1")
    with WakeListener(lambda: None):  # stands for the running daemon's claimer
        code, modules = _modules_after(git_repo, "signal", "emit", "planner_finished", "probe")
    assert code == 0 and "actors.store" in modules
    unneeded = {"shutil", "subprocess", "http.client", "frontends.daemon.spawn", "frontends.daemon.client"}
    unneeded |= {"protocols.waves", "protocols.plan"}
    assert unneeded & modules == set()


def test_version_imports_neither_the_store_nor_any_command_group(tmp_path: Path) -> None:
    code, modules = _modules_after(tmp_path, "--version")
    assert code == 0
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert "actors.store" not in modules
    assert not {"frontends.cli.tasks", "frontends.cli.signals", "frontends.cli.doctor"} & modules
