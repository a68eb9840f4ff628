"""Shared fixtures: an isolated CORRAL_HOME, a real git repository in a temp dir, and actor hygiene."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.disk_kit import SmallDisk, small_disk

GIT_ENV = {
    "GIT_AUTHOR_NAME": "corral-test",
    "GIT_AUTHOR_EMAIL": "test@corral.invalid",
    "GIT_COMMITTER_NAME": "corral-test",
    "GIT_COMMITTER_EMAIL": "test@corral.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    """Run git with a fixed identity and no user config; return stdout."""
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


@pytest.fixture
def corral_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CORRAL_HOME so no test touches the user's database."""
    home = tmp_path / "corral-home"
    home.mkdir()
    monkeypatch.setenv("CORRAL_HOME", str(home))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return home


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real git repository with one commit on branch main."""
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# proj\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def stop_actors() -> Iterator[None]:
    """Stop every pykka actor a test left running, so no thread outlives its test."""
    yield
    import pykka

    pykka.ActorRegistry.stop_all(block=True, timeout=10)


@pytest.fixture(autouse=True)
def _private_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test has its own CORRAL_RUNTIME_DIR (short, under /tmp: socket paths must fit in 107 bytes), so
    no command a test runs can reach, or start, the user's daemon; and commands do not start a daemon by
    themselves (CORRAL_AUTOSTART=0) unless the test asks for it. Whatever daemon or heart is left running in
    the directory at the end is stopped, or killed."""
    import shutil
    import tempfile

    parent = Path(tempfile.mkdtemp(prefix="crl-t-", dir="/tmp"))
    directory = parent / "run"
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(directory))
    monkeypatch.setenv("CORRAL_AUTOSTART", "0")
    yield directory
    if directory.exists():
        from tests.daemon_kit import stop_everything

        stop_everything(directory)
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(autouse=True)
def _quiet_pykka() -> Iterator[None]:
    """Crashes are what the supervision tests provoke: keep pykka's tracebacks out of the report.

    (Not caplog.set_level: that also raises caplog's own handler level, hiding other loggers from tests.)
    """
    import logging

    logger = logging.getLogger("pykka")
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(before)


@pytest.fixture
def trees() -> Iterator[list]:
    """Supervision trees a test started; each is stopped (children in reverse order) at teardown."""
    made: list = []
    yield made
    for tree in made:
        tree.stop(timeout=20)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 2 MiB tmpfs (a real, small disk to fill); skipped, with the reason, where it cannot be mounted."""
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted
