"""`corral setup` as a real process: programs detected on a PATH of symlinks, a file that parses, --force."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from protocols.config import parse_config
from tests.integration.cli_kit import fails, ok


def fake_path(tmp_path: Path, *programs: str) -> str:
    """A directory holding `programs` as symlinks to /bin/true; its path is the whole PATH."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    for program in programs:
        os.symlink("/bin/true", bin_dir / program)
    return str(bin_dir)


@pytest.fixture
def repo(corral_home: Path, git_repo: Path) -> Path:
    return git_repo


def config_of(repo: Path) -> str:
    return (repo / ".corral" / "config.toml").read_text()


def test_the_first_program_in_order_becomes_the_default(repo: Path, tmp_path: Path) -> None:
    out = ok(repo, "setup", PATH=fake_path(tmp_path, "codex", "claude"))
    config = parse_config(config_of(repo), "config.toml")
    assert config.default_program == "claude"
    assert "# Every key is optional" in config_of(repo)  # the commented template
    table = out.splitlines()
    assert table[0].split() == ["PROGRAM", "FOUND", "PATH", "VERSION"]
    found = {line.split()[0]: line.split()[1] for line in table[1:8]}
    assert found == {"claude": "yes", "codex": "yes", "opencode": "no", "gemini": "no", "aider": "no",
                     "amp": "no", "corral-sim": "no"}  # fmt: skip
    assert 'default_program = "claude"' in out


def test_codex_alone_is_chosen(repo: Path, tmp_path: Path) -> None:
    result = json.loads(ok(repo, "setup", "--json", PATH=fake_path(tmp_path, "codex")))
    assert result["default_program"] == "codex"
    assert parse_config(config_of(repo), "config.toml").default_program == "codex"
    codex = next(p for p in result["programs"] if p["program"] == "codex")
    assert codex["found"] and codex["path"].endswith("/codex")


def test_an_empty_path_falls_back_to_corral_sim(repo: Path) -> None:
    out = ok(repo, "setup", PATH="")
    assert parse_config(config_of(repo), "config.toml").default_program == "corral-sim"
    assert "corral-sim (the simulated agent)" in out


def test_an_existing_config_is_kept_unless_forced_and_then_backed_up(repo: Path, tmp_path: Path) -> None:
    path = fake_path(tmp_path, "claude")
    (repo / ".corral").mkdir()
    (repo / ".corral" / "config.toml").write_text('default_program = "aider"\n')
    assert "already exists" in fails(repo, 2, "setup", PATH=path)
    assert config_of(repo) == 'default_program = "aider"\n'
    out = ok(repo, "setup", "--force", PATH=path)
    assert (repo / ".corral" / "config.toml.bak").read_text() == 'default_program = "aider"\n'
    assert parse_config(config_of(repo), "config.toml").default_program == "claude"
    assert "config.toml.bak" in out


def test_the_files_corral_creates_are_excluded_from_git_once(repo: Path, tmp_path: Path) -> None:
    import shutil

    from tests.conftest import git

    path = fake_path(tmp_path)
    os.symlink(shutil.which("git") or "/usr/bin/git", Path(path) / "git")  # git, and no agent program
    first = json.loads(ok(repo, "setup", "--json", PATH=path))
    assert first["excluded"] == [
        ".corral/logs/",
        ".corral/prompts/",
        ".corral/plans/",
        ".corral/signals/",
        ".corral/config.toml.bak",
    ]
    (repo / ".corral" / "logs").mkdir()
    (repo / ".corral" / "logs" / "a.log").write_text("x")
    assert git(repo, "status", "--porcelain", "--untracked-files=all").split() == [
        "??",
        ".corral/config.toml",
    ]
    again = json.loads(ok(repo, "setup", "--json", "--force", PATH=path))
    assert again["excluded"] == []
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    assert exclude.count(".corral/logs/") == 1


def test_setup_outside_a_repository_is_a_usage_error(corral_home: Path, tmp_path: Path) -> None:
    assert "within a git repository" in fails(tmp_path, 2, "setup", PATH="")
