"""`corral doctor`, run as a real process with a PATH built for each test from symlinks and fake tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from frontends.cli.doctor import parse_tmux_version

CORRAL = str(Path(sys.executable).with_name("corral"))
_STRIPPED = ("CORRAL_MANAGED", "CORRAL_DEBUG", "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR")


def doctor(cwd: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [CORRAL, "doctor", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def bin_dir(tmp_path: Path, *tools: str, fakes: dict[str, str] | None = None) -> str:
    """A directory holding symlinks to the real `tools` and shell scripts for `fakes` (name → stdout)."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for tool in tools:
        real = shutil.which(tool)
        if real is None:
            pytest.skip(f"{tool} is not installed here")
        (directory / tool).symlink_to(real)
    for name, output in (fakes or {}).items():
        script = directory / name
        script.write_text(f"#!/bin/sh\necho '{output}'\n")
        script.chmod(0o755)
    return str(directory)


def lines_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name → its line of the report."""
    found = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("ok", "warn", "FAIL"):
            found[parts[1] if parts[1] != "data" else "data dir"] = line
    return found


@pytest.fixture
def healthy_tools(tmp_path: Path) -> str:
    return bin_dir(tmp_path, "git", "nice", "ionice", fakes={"tmux": "tmux 3.3a"})


def test_doctor_passes_with_every_tool_present_and_works_outside_a_repository(
    corral_home: Path, tmp_path: Path, healthy_tools: str
) -> None:
    result = doctor(tmp_path, path=healthy_tools)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = lines_of(result)
    assert set(checks) == {"python", "git", "tmux", "nice", "ionice", "data dir", "database"}
    assert all(line.startswith("ok ") for line in checks.values()), result.stdout
    assert "quick_check ok" in checks["database"]
    assert (corral_home / "corral.db").exists()


def test_doctor_without_tmux_fails_naming_tmux_and_how_to_install_it(
    corral_home: Path, tmp_path: Path
) -> None:
    result = doctor(tmp_path, path=bin_dir(tmp_path, "git", "nice", "ionice"))
    assert result.returncode == 1
    assert lines_of(result)["tmux"].startswith("FAIL  tmux")
    assert "not found on PATH" in lines_of(result)["tmux"]
    assert "fix: install tmux ≥ 3.0:" in result.stdout
    assert "tmux must be fixed" in result.stdout
    assert result.stderr == ""


def test_doctor_with_tmux_older_than_3_0_fails(corral_home: Path, tmp_path: Path) -> None:
    path = bin_dir(tmp_path, "git", "nice", "ionice", fakes={"tmux": "tmux 2.9a"})
    result = doctor(tmp_path, path=path)
    assert result.returncode == 1
    assert "2.9a is too old: corral needs ≥ 3.0" in lines_of(result)["tmux"]


@pytest.mark.parametrize("reported", ["tmux next-3.5", "tmux master", "tmux 3.0"])
def test_doctor_accepts_development_and_minimum_tmux_versions(
    corral_home: Path, tmp_path: Path, reported: str
) -> None:
    result = doctor(tmp_path, path=bin_dir(tmp_path, "git", "nice", "ionice", fakes={"tmux": reported}))
    assert result.returncode == 0, result.stdout
    assert lines_of(result)["tmux"].startswith("ok ")


def test_doctor_without_git_fails(corral_home: Path, tmp_path: Path) -> None:
    result = doctor(tmp_path, path=bin_dir(tmp_path, "nice", "ionice", fakes={"tmux": "tmux 3.4"}))
    assert result.returncode == 1
    assert lines_of(result)["git"].startswith("FAIL  git")
    assert "fix: install git:" in result.stdout


def test_doctor_without_nice_and_ionice_only_warns_that_resource_controls_are_skipped(
    corral_home: Path, tmp_path: Path
) -> None:
    result = doctor(tmp_path, path=bin_dir(tmp_path, "git", fakes={"tmux": "tmux 3.4"}))
    assert result.returncode == 0, result.stdout
    checks = lines_of(result)
    assert checks["nice"].startswith("warn  nice")
    assert checks["ionice"].startswith("warn  ionice")
    assert "resource controls skipped" in checks["nice"]
    assert "2 warnings" in result.stdout


def test_doctor_fails_when_the_data_directory_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, healthy_tools: str
) -> None:
    not_a_dir = tmp_path / "home-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("CORRAL_HOME", str(not_a_dir))
    result = doctor(tmp_path, path=healthy_tools)
    assert result.returncode == 1
    assert lines_of(result)["data dir"].startswith("FAIL")
    assert "is not a directory" in lines_of(result)["data dir"]
    assert lines_of(result)["database"].startswith("FAIL")
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_fails_on_a_file_that_is_not_a_database_and_says_how_to_move_it_away(
    corral_home: Path, tmp_path: Path, healthy_tools: str
) -> None:
    db = corral_home / "corral.db"
    db.write_bytes(b"this is not sqlite" * 100)
    result = doctor(tmp_path, path=healthy_tools)
    assert result.returncode == 1
    assert lines_of(result)["database"].startswith("FAIL")
    assert str(db) in lines_of(result)["database"]
    assert f"mv {db} {db}.bad" in result.stdout


def test_doctor_fails_on_an_empty_database_file_and_leaves_it_alone(
    corral_home: Path, tmp_path: Path, healthy_tools: str
) -> None:
    db = corral_home / "corral.db"
    db.touch()
    result = doctor(tmp_path, path=healthy_tools)
    assert result.returncode == 1
    line = lines_of(result)["database"]
    assert line.startswith(f"FAIL  database  the corral database {db} is an empty file")
    assert f"mv {db} {db}.bad" in result.stdout
    assert db.stat().st_size == 0


def test_doctor_fails_on_a_damaged_database_and_says_how_to_recover_it(
    corral_home: Path, tmp_path: Path, healthy_tools: str
) -> None:
    from actors.store import Store

    db = corral_home / "corral.db"
    with Store.open(db) as store:
        project = store.ensure_project(tmp_path)
        for n in range(400):
            store.create_task(project.id, f"task-{n}", content="x" * 500)
    with open(db, "r+b") as handle:  # one b-tree page in the middle, garbage; the header page stays whole
        handle.seek(db.stat().st_size // 4096 // 2 * 4096)
        handle.write(bytes(range(256)) * 16)
    result = doctor(tmp_path, path=healthy_tools)
    assert result.returncode == 1
    assert f"the corral database {db} is damaged (" in lines_of(result)["database"]
    assert f"sqlite3 {db} .recover" in result.stdout


def test_doctor_json_lists_every_check_with_level_and_fix(corral_home: Path, tmp_path: Path) -> None:
    result = doctor(tmp_path, "--json", path=bin_dir(tmp_path, "git", "nice", "ionice"))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["tmux"]["level"] == "FAIL"
    assert by_name["tmux"]["required"] is True
    assert "install tmux" in by_name["tmux"]["fix"]
    assert by_name["nice"]["required"] is False
    assert by_name["python"]["level"] == "ok"


@pytest.mark.parametrize(
    ("reported", "parsed"),
    [
        ("tmux 3.3a", (3, 3)),
        ("tmux 3.0", (3, 0)),
        ("tmux 2.9a\n", (2, 9)),
        ("tmux next-3.5", (3, 5)),
        ("tmux 3.4-rc", (3, 4)),
        ("tmux 10", (10, 0)),
        ("tmux master", "dev"),
        ("tmux openbsd-7.4", "dev"),
        ("tmux", None),
        ("screen 4.0", None),
        ("tmux unknown", None),
        ("", None),
    ],
)
def test_tmux_version_is_read_from_tmux_dash_v(reported: str, parsed: object) -> None:
    assert parse_tmux_version(reported) == parsed
