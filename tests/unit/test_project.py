"""frontends.project: the project is the MAIN repository's root, from anywhere inside it or its worktrees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from frontends.project import find_project_root
from protocols.errors import NotInRepoError, UsageError
from tests.conftest import git

NO_GIT_ENV: dict[str, str] = {}  # no GIT_DIR in the environment: the file-reading path


def forbid_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, fail the test if resolution spawns git: the common layouts are read from files."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"git was spawned: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)


def test_root_found_from_the_repository_root(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_git(monkeypatch)
    assert find_project_root(git_repo, NO_GIT_ENV) == git_repo.resolve()


def test_root_found_from_a_nested_subdirectory(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_git(monkeypatch)
    nested = git_repo / "src" / "pkg"
    nested.mkdir(parents=True)
    assert find_project_root(nested, NO_GIT_ENV) == git_repo.resolve()


def test_linked_worktree_resolves_to_the_main_root_without_spawning_git(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worktree = tmp_path / "wt"
    _add_worktree(git_repo, worktree)
    (worktree / "deep").mkdir()
    forbid_git(monkeypatch)
    assert find_project_root(worktree, NO_GIT_ENV) == git_repo.resolve()
    assert find_project_root(worktree / "deep", NO_GIT_ENV) == git_repo.resolve()


def test_worktree_inside_the_repository_resolves_to_the_main_root(git_repo: Path) -> None:
    worktree = git_repo / ".worktrees" / "fix-login"
    _add_worktree(git_repo, worktree)
    assert find_project_root(worktree, NO_GIT_ENV) == git_repo.resolve()


def test_relative_gitdir_in_a_worktree_gitfile_is_read_relative_to_the_worktree(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worktree = tmp_path / "wt"
    _add_worktree(git_repo, worktree)
    gitdir = Path((worktree / ".git").read_text().removeprefix("gitdir:").strip())
    relative = Path("..") / gitdir.relative_to(tmp_path)
    (worktree / ".git").write_text(f"gitdir: {relative}\n")
    forbid_git(monkeypatch)
    assert find_project_root(worktree, NO_GIT_ENV) == git_repo.resolve()


def test_symlinked_directory_resolves_to_the_real_root(git_repo: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(git_repo)
    assert find_project_root(link, NO_GIT_ENV) == git_repo.resolve()


def test_outside_any_repository_raises_not_in_repo_with_exit_code_2(tmp_path: Path) -> None:
    with pytest.raises(NotInRepoError) as caught:
        find_project_root(tmp_path, NO_GIT_ENV)
    assert str(caught.value) == "corral must be run from within a git repository"
    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_code == 2


def test_a_dot_git_directory_that_is_not_a_repository_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "stray" / ".git").mkdir(parents=True)
    with pytest.raises(NotInRepoError):
        find_project_root(tmp_path / "stray", NO_GIT_ENV)


def test_bare_repository_is_not_a_project(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(NotInRepoError):
        find_project_root(bare, NO_GIT_ENV)
    with pytest.raises(NotInRepoError):
        find_project_root(tmp_path, {"GIT_DIR": str(bare)})


def test_separate_git_dir_repository_root_is_its_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", f"--separate-git-dir={tmp_path / 'store.git'}", str(repo))
    (repo / "sub").mkdir()
    forbid_git(monkeypatch)
    assert find_project_root(repo / "sub", NO_GIT_ENV) == repo.resolve()


def test_git_dir_in_the_environment_is_respected(git_repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_project_root(elsewhere, {"GIT_DIR": str(git_repo / ".git")}) == git_repo.resolve()


def test_git_dir_of_a_linked_worktree_in_the_environment_gives_the_main_root(
    git_repo: Path, tmp_path: Path
) -> None:
    worktree = tmp_path / "wt"
    _add_worktree(git_repo, worktree)
    gitdir = (worktree / ".git").read_text().removeprefix("gitdir:").strip()
    assert find_project_root(tmp_path, {"GIT_DIR": gitdir}) == git_repo.resolve()


def test_unparsable_gitfile_falls_back_to_git_which_refuses_it(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / ".git").write_text("not a gitfile\n")
    with pytest.raises(NotInRepoError):
        find_project_root(tmp_path / "broken", NO_GIT_ENV)


def test_linked_worktree_of_a_separate_git_dir_asks_to_run_from_the_main_work_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", f"--separate-git-dir={tmp_path / 'store.git'}", str(repo))
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    _add_worktree(repo, tmp_path / "wt")
    with pytest.raises(NotInRepoError, match="run corral from the main work tree"):
        find_project_root(tmp_path / "wt", NO_GIT_ENV)


def test_git_fallback_is_not_in_repo_when_git_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(NotInRepoError):
        find_project_root(tmp_path, {"GIT_DIR": str(tmp_path / "nowhere"), "PATH": "/nonexistent"})


def _add_worktree(repo: Path, path: Path) -> None:
    git(repo, "worktree", "add", "-q", "-b", path.name, str(path))
