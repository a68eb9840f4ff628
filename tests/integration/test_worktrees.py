"""Worktrees on real git repositories in temp dirs: create, share, pause, resume, remove, push, diff stats,
and the errors a person sees when git says no."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest

from actors.git import (
    PAUSE_MESSAGE,
    BranchNameError,
    DiffStats,
    GitError,
    NoRemoteError,
    Worktree,
    WorktreeConflict,
    create_worktree,
    diff_stats,
    ensure_excluded,
    list_worktrees,
    pause_worktree,
    push_branch,
    remove_worktree,
    resume_worktree,
    run_git,
    shared_worktree,
    slug,
)
from actors.git import worktrees as worktrees_module
from actors.git.diffstat import parse_numstat
from actors.git.listing import parse_worktree_list
from actors.git.runner import BackgroundGit, start_git
from protocols.errors import ConflictError, CorralError, NotFoundError
from tests.conftest import GIT_ENV, git

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """corral runs git in its own environment: give it the tests' identity and no user config."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def repo(git_repo: Path) -> Path:
    return git_repo.resolve()


def rev(cwd: Path, what: str = "HEAD") -> str:
    return git(cwd, "rev-parse", what).strip()


def commit_file(cwd: Path, name: str, text: str, message: str = "change") -> str:
    (cwd / name).parent.mkdir(parents=True, exist_ok=True)
    (cwd / name).write_text(text)
    git(cwd, "add", name)
    git(cwd, "commit", "-q", "-m", message)
    return rev(cwd)


def worktree_paths(repo: Path) -> list[str]:
    return [e.path for e in list_worktrees(repo)]


# ------------------------------------------------------------------------------------------------- create


def test_create_makes_a_new_branch_from_head_under_dot_worktrees(repo: Path) -> None:
    head = rev(repo)
    wt = create_worktree(repo, "Fix login", prefix="corral/")
    assert wt == Worktree(
        repo_root=str(repo),
        path=str(repo / ".worktrees" / slug("corral/fix-login")),
        branch="corral/fix-login",
        base_commit=head,
    )
    assert rev(repo, "refs/heads/corral/fix-login") == head
    assert git(Path(wt.path), "symbolic-ref", "HEAD").strip() == "refs/heads/corral/fix-login"
    assert worktree_paths(repo) == [str(repo), wt.path]
    assert git(repo, "config", "--get", "branch.corral/fix-login.corral-base").strip() == head


def test_create_from_a_given_base(repo: Path) -> None:
    first = rev(repo)
    commit_file(repo, "later.txt", "later\n")
    wt = create_worktree(repo, "Old base", prefix="corral/", base=first)
    assert wt.base_commit == first
    assert rev(Path(wt.path)) == first
    assert not (Path(wt.path) / "later.txt").exists()


def test_create_on_an_existing_branch_checks_it_out_as_it_is(repo: Path) -> None:
    fork = rev(repo)
    git(repo, "switch", "-q", "-c", "feature")
    tip = commit_file(repo, "feature.txt", "feature\n")
    git(repo, "switch", "-q", "main")
    commit_file(repo, "main.txt", "main moved on\n")

    wt = create_worktree(repo, "whatever title", branch="feature")
    assert wt.branch == "feature" and wt.existing_branch
    assert wt.path == str(repo / ".worktrees" / "feature")
    assert rev(Path(wt.path)) == tip
    assert wt.base_commit == fork  # the merge base with HEAD: what the branch adds


def test_create_with_a_missing_branch_makes_it_from_base(repo: Path) -> None:
    wt = create_worktree(repo, "t", branch="topic/new")
    assert not wt.existing_branch
    assert rev(repo, "refs/heads/topic/new") == rev(repo) == wt.base_commit


def test_create_again_returns_the_same_worktree(repo: Path) -> None:
    first = create_worktree(repo, "Fix login", prefix="corral/")
    commit_file(repo, "main.txt", "main moved on\n")  # HEAD moves: the base must not
    commit_file(Path(first.path), "work.txt", "work\n")  # the branch moves too
    again = create_worktree(repo, "Fix login", prefix="corral/")
    assert again == first
    assert worktree_paths(repo) == [str(repo), first.path]


def test_create_again_after_the_directory_was_deleted_by_hand(repo: Path) -> None:
    first = create_worktree(repo, "Fix login")
    subprocess.run(["rm", "-rf", first.path], check=True)
    again = create_worktree(repo, "Fix login")
    assert again == first
    assert Path(again.path, "README.md").is_file()


def test_create_leaves_other_missing_worktrees_registered(repo: Path) -> None:
    other = create_worktree(repo, "on a usb disk")
    subprocess.run(["rm", "-rf", other.path], check=True)
    create_worktree(repo, "t")
    assert other.path in worktree_paths(repo)


def test_create_refuses_a_locked_worktree_whose_directory_is_gone(repo: Path) -> None:
    first = create_worktree(repo, "t")
    git(repo, "worktree", "lock", "--reason", "removable disk", first.path)
    subprocess.run(["rm", "-rf", first.path], check=True)
    with pytest.raises(WorktreeConflict, match=r"locked \(removable disk\)"):
        create_worktree(repo, "t")


def test_create_refuses_a_branch_checked_out_in_the_main_work_tree(repo: Path) -> None:
    with pytest.raises(
        WorktreeConflict, match="'main' is already checked out in the main work tree"
    ) as caught:
        create_worktree(repo, "x", branch="main")
    assert str(repo) in str(caught.value)
    assert isinstance(caught.value, ConflictError)
    assert worktree_paths(repo) == [str(repo)]


def test_create_refuses_a_branch_checked_out_in_another_worktree(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    git(repo, "worktree", "add", "-q", "-b", "corral/fix-login", str(elsewhere))
    with pytest.raises(WorktreeConflict, match="already checked out in") as caught:
        create_worktree(repo, "Fix login")
    assert str(elsewhere) in str(caught.value)


def test_create_refuses_a_path_that_holds_something_else(repo: Path) -> None:
    taken = repo / ".worktrees" / slug("corral/fix-login")
    taken.mkdir(parents=True)
    (taken / "notes.txt").write_text("mine\n")
    with pytest.raises(WorktreeConflict, match="already exists and is not the worktree"):
        create_worktree(repo, "Fix login")
    assert (taken / "notes.txt").read_text() == "mine\n"


def test_create_rejects_an_invalid_branch_before_running_git(repo: Path) -> None:
    with pytest.raises(BranchNameError, match="not a valid git branch name"):
        create_worktree(repo, "x", branch="bad name")
    with pytest.raises(BranchNameError, match="branch prefix"):
        create_worktree(repo, "x", prefix="bad prefix/")


def test_create_with_a_bad_base_says_so(repo: Path) -> None:
    with pytest.raises(GitError, match=r"'no-such-ref' is not a commit"):
        create_worktree(repo, "x", base="no-such-ref")
    assert not git(repo, "branch", "--list", "corral/x")


def test_worktrees_are_excluded_once_without_touching_gitignore(repo: Path) -> None:
    exclude = repo / ".git" / "info" / "exclude"
    create_worktree(repo, "one")
    create_worktree(repo, "two")
    assert not ensure_excluded(repo)
    lines = exclude.read_text().splitlines()
    assert lines.count("/.worktrees/") == 1
    assert not (repo / ".gitignore").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_exclude_is_not_added_when_the_user_already_has_it(repo: Path) -> None:
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_text("*.swp\n.worktrees/")  # no final newline
    assert not ensure_excluded(repo)
    exclude.write_text("*.swp")
    assert ensure_excluded(repo)
    assert exclude.read_text() == "*.swp\n# corral: agent worktrees\n/.worktrees/\n"


def test_create_tracks_a_branch_that_only_a_remote_has(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "switch", "-q", "-c", "pr-42")
    tip = commit_file(repo, "pr.txt", "from a PR\n")
    git(repo, "push", "-q", "origin", "pr-42")
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-q", "-D", "pr-42")
    git(repo, "fetch", "-q", "origin")

    wt = create_worktree(repo, "review PR 42", branch="pr-42")
    assert wt.existing_branch
    assert rev(Path(wt.path)) == tip
    assert git(repo, "config", "--get", "branch.pr-42.remote").strip() == "origin"


def test_two_processes_creating_the_same_worktree_get_one(repo: Path) -> None:
    script = (
        "import sys, msgspec\n"
        "from actors.git import create_worktree\n"
        "print(msgspec.json.encode(create_worktree(sys.argv[1], 'Race', prefix='corral/')).decode())\n"
    )
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(repo)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6
    records = {msgspec.json.decode(out, type=Worktree) for out in outputs}
    assert len(records) == 1
    assert worktree_paths(repo) == [str(repo), records.pop().path]
    assert (repo / ".git" / "info" / "exclude").read_text().count("/.worktrees/") == 1


def test_threads_creating_the_same_worktree_get_one(repo: Path) -> None:
    results: list[Worktree] = []
    barrier = threading.Barrier(4)

    def make() -> None:
        barrier.wait(timeout=10)
        results.append(create_worktree(repo, "Race"))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 4 and len(set(results)) == 1


def test_a_worktree_made_meanwhile_by_plain_git_is_returned(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone outside corral's lock adds the worktree between corral's check and its `git worktree add`.
    path = repo / ".worktrees" / slug("corral/race")
    git(repo, "worktree", "add", "-q", "-b", "corral/race", str(path))
    monkeypatch.setattr(worktrees_module, "_existing", lambda root, branch, p: False)
    wt = create_worktree(repo, "race")
    assert wt.path == str(path) and wt.branch == "corral/race"
    assert worktree_paths(repo) == [str(repo), str(path)]


# A new branch takes a short path (one look-up, one `git worktree add`); these pin its fall-backs.


def recorded_base(repo: Path, branch: str) -> str | None:
    done = subprocess.run(
        ["git", "config", "--get", f"branch.{branch}.corral-base"],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def spy_on_new_branch_path(monkeypatch: pytest.MonkeyPatch) -> list[Worktree | None]:
    """What each call of the short path returned: None means it handed over to the full one."""
    returned: list[Worktree | None] = []
    real = worktrees_module._add_new_branch

    def spy(root: Path, branch: str, path: Path, base: str) -> Worktree | None:
        returned.append(real(root, branch, path, base))
        return returned[-1]

    monkeypatch.setattr(worktrees_module, "_add_new_branch", spy)
    return returned


def test_a_new_branch_whose_path_has_a_stale_registration_is_made_all_the_same(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another branch's worktree was at this path and its directory was deleted by hand: git refuses the
    # path (after making the branch), and the full path unregisters it and checks the new branch out there.
    path = repo / ".worktrees" / slug("corral/fix-login")
    git(repo, "worktree", "add", "-q", "-b", "other", str(path))
    subprocess.run(["rm", "-rf", str(path)], check=True)
    returned = spy_on_new_branch_path(monkeypatch)
    head = rev(repo)

    wt = create_worktree(repo, "Fix login")

    assert returned == [None]
    assert wt == Worktree(repo_root=str(repo), path=str(path), branch="corral/fix-login", base_commit=head)
    assert worktree_paths(repo) == [str(repo), str(path)]
    assert git(Path(wt.path), "symbolic-ref", "HEAD").strip() == "refs/heads/corral/fix-login"
    assert recorded_base(repo, "corral/fix-login") == head
    assert rev(repo, "refs/heads/other") == head
    assert create_worktree(repo, "Fix login") == wt


def test_a_new_branch_refused_for_a_locked_stale_path_is_made_once_it_is_unlocked(repo: Path) -> None:
    path = repo / ".worktrees" / slug("corral/fix-login")
    git(repo, "worktree", "add", "-q", "-b", "other", str(path))
    git(repo, "worktree", "lock", "--reason", "removable disk", str(path))
    subprocess.run(["rm", "-rf", str(path)], check=True)
    with pytest.raises(WorktreeConflict, match=r"locked \(removable disk\)"):
        create_worktree(repo, "Fix login")
    # git made the branch before it refused the path; it stays, recorded as corral's, for the retry
    git(repo, "worktree", "unlock", str(path))
    wt = create_worktree(repo, "Fix login")
    assert wt.path == str(path) and wt.base_commit == rev(repo) and not wt.existing_branch


def test_a_branch_made_meanwhile_by_plain_git_is_checked_out_and_not_recorded_as_corrals(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone outside corral's lock creates the branch between corral's look-up and its `git worktree add`.
    fork = rev(repo)
    commit_file(repo, "main.txt", "main moved on\n")
    real_start_git = worktrees_module.start_git

    def racing_start_git(root: Path, *args: str, **kwargs: float) -> BackgroundGit:
        git(repo, "branch", "corral/race", fork)
        return real_start_git(root, *args, **kwargs)

    monkeypatch.setattr(worktrees_module, "start_git", racing_start_git)
    returned = spy_on_new_branch_path(monkeypatch)

    wt = create_worktree(repo, "race")

    assert returned == [None]
    assert wt.branch == "corral/race" and wt.existing_branch and wt.base_commit == fork
    assert rev(Path(wt.path)) == fork
    assert recorded_base(repo, "corral/race") is None


def test_the_short_path_makes_what_the_full_path_would(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    returned = spy_on_new_branch_path(monkeypatch)
    short = create_worktree(repo, "same either way")
    assert returned == [short]
    assert recorded_base(repo, short.branch) == short.base_commit
    remove_worktree(short)
    git(repo, "branch", "-q", "-D", short.branch)
    monkeypatch.setattr(worktrees_module, "_add_new_branch", lambda *args: None)
    assert create_worktree(repo, "same either way") == short
    assert recorded_base(repo, short.branch) == short.base_commit


def test_the_git_common_dir_is_asked_again_when_the_root_becomes_another_repository(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    for name in ("first", "second"):
        main = tmp_path / name
        main.mkdir()
        git(main, "init", "-q", "-b", "main")
        commit_file(main, "README.md", f"{name}\n")
        if root.exists():
            subprocess.run(["rm", "-rf", str(root)], check=True)
        git(main, "worktree", "add", "-q", "--detach", str(root))  # root is now a worktree of `main`
        wt = create_worktree(root, "t")
        assert rev(Path(wt.path)) == rev(main)
        assert "/.worktrees/" in (main / ".git" / "info" / "exclude").read_text()
        assert (main / ".git" / "corral-worktrees.lock").exists()


# ------------------------------------------------------------------------------------------------- shared


def test_shared_worktree_is_made_once_and_then_returned(repo: Path) -> None:
    first = shared_worktree(repo, "auth-flow", "corral/")
    assert first.shared and first.branch == "corral/auth-flow"
    commit_file(Path(first.path), "plan.md", "# plan\n")
    again = shared_worktree(repo, "auth-flow", "corral/")
    assert again == first
    assert worktree_paths(repo) == [str(repo), first.path]


# -------------------------------------------------------------------------------------------------- pause


def test_pause_commits_everything_but_ignored_files_then_removes_the_tree(repo: Path) -> None:
    commit_file(repo, ".gitignore", "*.log\n")
    wt = create_worktree(repo, "Fix login")
    tree = Path(wt.path)
    (tree / "README.md").write_text("# proj\nedited\n")
    (tree / "new" / "deep").mkdir(parents=True)
    (tree / "new" / "deep" / "file.py").write_text("print(1)\n")
    (tree / "debug.log").write_text("ignored\n")
    git(tree, "add", "README.md")  # one change staged, the others not: all end up in the commit

    result = pause_worktree(wt, "Fix login")

    assert result.removed and result.commit is not None
    assert not tree.exists()
    assert str(tree) not in worktree_paths(repo)
    assert rev(repo, "refs/heads/corral/fix-login") == result.commit
    assert git(repo, "log", "-1", "--format=%s", result.commit).strip() == "[corral] paused Fix login"
    assert git(repo, "show", f"{result.commit}:README.md") == "# proj\nedited\n"
    files = git(repo, "ls-tree", "-r", "--name-only", result.commit).split()
    assert "new/deep/file.py" in files and "debug.log" not in files


def test_pause_of_a_clean_worktree_makes_no_commit(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    tip = commit_file(Path(wt.path), "done.txt", "committed by the agent\n")
    result = pause_worktree(wt, "Fix login")
    assert result.commit is None and result.removed
    assert rev(repo, "refs/heads/corral/fix-login") == tip
    assert not Path(wt.path).exists()


def test_pause_twice_does_nothing_the_second_time(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    pause_worktree(wt, "Fix login")
    tip = rev(repo, "refs/heads/corral/fix-login")
    again = pause_worktree(wt, "Fix login")
    assert again.commit is None and not again.removed
    assert rev(repo, "refs/heads/corral/fix-login") == tip


def test_pause_of_a_directory_deleted_by_hand_unregisters_it_and_keeps_the_branch(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    tip = commit_file(Path(wt.path), "a.txt", "a\n")
    subprocess.run(["rm", "-rf", wt.path], check=True)
    result = pause_worktree(wt, "t")
    assert result.commit is None and not result.removed
    assert worktree_paths(repo) == [str(repo)]
    assert rev(repo, f"refs/heads/{wt.branch}") == tip
    assert rev(Path(resume_worktree(repo, wt.branch, wt.path).path)) == tip


def test_pause_removes_a_worktree_with_a_submodule_but_not_changes_inside_it(
    repo: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    commit_file(lib, "lib.txt", "lib\n")
    allow_file = ("-c", "protocol.file.allow=always")
    git(repo, *allow_file, "submodule", "add", "-q", str(lib), "lib")
    git(repo, "commit", "-q", "-m", "add a submodule")
    wt = create_worktree(repo, "t")
    git(Path(wt.path), *allow_file, "submodule", "update", "-q", "--init")
    (Path(wt.path) / "wip.txt").write_text("wip\n")
    assert pause_worktree(wt, "t").commit is not None
    assert not Path(wt.path).exists()

    wt = resume_worktree(repo, wt.branch, wt.path)
    git(Path(wt.path), *allow_file, "submodule", "update", "-q", "--init")
    (Path(wt.path) / "lib" / "lib.txt").write_text("changed inside the submodule\n")
    with pytest.raises(WorktreeConflict, match="cannot commit"):
        pause_worktree(wt, "t")
    assert (Path(wt.path) / "lib" / "lib.txt").read_text() == "changed inside the submodule\n"


def test_pause_puts_a_multiline_title_on_one_line(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    (Path(wt.path) / "x.txt").write_text("x\n")
    result = pause_worktree(wt, "two\nlines  here")
    assert result.commit is not None
    assert git(repo, "log", "-1", "--format=%B", result.commit).strip() == PAUSE_MESSAGE.format(
        title="two lines here"
    )


def test_pause_skips_commit_hooks(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho 'lint failed' >&2\nexit 1\n")
    hook.chmod(0o755)
    wt = create_worktree(repo, "t")
    (Path(wt.path) / "wip.txt").write_text("half done\n")
    assert pause_worktree(wt, "t").commit is not None


def test_pause_commits_without_a_configured_identity(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(key, raising=False)
    git(repo, "config", "user.useConfigOnly", "true")  # git would refuse to guess one
    wt = create_worktree(repo, "t")
    (Path(wt.path) / "wip.txt").write_text("half done\n")
    commit = pause_worktree(wt, "t").commit
    assert commit is not None
    assert git(repo, "log", "-1", "--format=%an <%ae>", commit).strip() == "corral <corral@localhost>"


def test_pause_refuses_a_locked_worktree_and_changes_nothing(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    git(repo, "worktree", "lock", "--reason", "on a USB disk", wt.path)
    (Path(wt.path) / "wip.txt").write_text("half done\n")
    with pytest.raises(WorktreeConflict, match=r"locked \(on a USB disk\).*git worktree unlock"):
        pause_worktree(wt, "t")
    assert (Path(wt.path) / "wip.txt").exists()
    assert rev(repo, "refs/heads/corral/t") == wt.base_commit


def test_pause_refuses_a_worktree_in_the_middle_of_a_merge(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    tree = Path(wt.path)
    commit_file(tree, "README.md", "ours\n")
    git(repo, "switch", "-q", "-c", "other")
    commit_file(repo, "README.md", "theirs\n")
    git(repo, "switch", "-q", "main")
    subprocess.run(["git", "merge", "other"], cwd=tree, env={**os.environ, **GIT_ENV}, capture_output=True)
    with pytest.raises(WorktreeConflict, match="a merge is in progress"):
        pause_worktree(wt, "t")
    assert tree.exists()


def test_pause_refuses_a_detached_worktree(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    git(Path(wt.path), "switch", "-q", "--detach")
    with pytest.raises(WorktreeConflict, match="detached HEAD"):
        pause_worktree(wt, "t")


# ------------------------------------------------------------------------------------------------- resume


def test_resume_puts_the_branch_back_at_the_same_path_with_the_pause_commit(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    (Path(wt.path) / "untracked.txt").write_text("keep me\n")
    paused = pause_worktree(wt, "Fix login")
    commit_file(repo, "main.txt", "main moved on\n")

    back = resume_worktree(repo, wt.branch, wt.path, base_commit=wt.base_commit)
    assert back == wt
    assert rev(Path(back.path)) == paused.commit
    assert (Path(back.path) / "untracked.txt").read_text() == "keep me\n"
    assert git(Path(back.path), "status", "--porcelain") == ""


def test_resume_without_a_base_uses_the_recorded_one(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    pause_worktree(wt, "Fix login")
    commit_file(repo, "main.txt", "main moved on\n")
    assert resume_worktree(repo, wt.branch, wt.path).base_commit == wt.base_commit


def test_resume_twice_returns_the_same_worktree(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    pause_worktree(wt, "Fix login")
    assert resume_worktree(repo, wt.branch, wt.path) == resume_worktree(repo, wt.branch, wt.path) == wt


def test_resume_refuses_when_the_branch_is_checked_out_elsewhere(repo: Path, tmp_path: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    pause_worktree(wt, "Fix login")
    elsewhere = tmp_path / "inspect"
    git(repo, "worktree", "add", "-q", str(elsewhere), wt.branch)
    with pytest.raises(WorktreeConflict, match="already checked out in") as caught:
        resume_worktree(repo, wt.branch, wt.path)
    assert str(elsewhere) in str(caught.value)
    assert not Path(wt.path).exists()


def test_resume_refuses_when_the_user_checked_the_branch_out_in_the_main_tree(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    pause_worktree(wt, "Fix login")
    git(repo, "switch", "-q", wt.branch)
    with pytest.raises(WorktreeConflict, match="main work tree"):
        resume_worktree(repo, wt.branch, wt.path)


def test_resume_refuses_when_the_path_holds_something_else(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    pause_worktree(wt, "Fix login")
    Path(wt.path).mkdir()
    (Path(wt.path) / "stray.txt").write_text("?\n")
    with pytest.raises(WorktreeConflict, match="already exists"):
        resume_worktree(repo, wt.branch, wt.path)


def test_resume_of_a_deleted_branch_says_it_is_gone(repo: Path) -> None:
    wt = create_worktree(repo, "Fix login")
    pause_worktree(wt, "Fix login")
    git(repo, "branch", "-q", "-D", wt.branch)
    with pytest.raises(GitError, match="no longer exists"):
        resume_worktree(repo, wt.branch, wt.path)


# --------------------------------------------------------------------------------------- remove and kill


def test_remove_keeps_the_branch(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    tip = commit_file(Path(wt.path), "a.txt", "a\n")
    assert remove_worktree(wt)
    assert not Path(wt.path).exists()
    assert rev(repo, f"refs/heads/{wt.branch}") == tip
    assert not remove_worktree(wt)  # already gone


def test_remove_refuses_a_dirty_worktree_unless_forced(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    (Path(wt.path) / "wip.txt").write_text("unsaved\n")
    with pytest.raises(WorktreeConflict, match="uncommitted changes"):
        remove_worktree(wt)
    assert Path(wt.path, "wip.txt").exists()
    assert remove_worktree(wt, force=True)
    assert not Path(wt.path).exists()
    assert rev(repo, f"refs/heads/{wt.branch}") == wt.base_commit


def test_remove_refuses_a_locked_worktree_even_when_forced(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    git(repo, "worktree", "lock", wt.path)
    with pytest.raises(WorktreeConflict, match="locked"):
        remove_worktree(wt, force=True)
    assert Path(wt.path).exists()


# --------------------------------------------------------------------------------------------------- push


def test_push_sends_the_branch_to_a_bare_remote_and_sets_upstream(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    wt = create_worktree(repo, "Fix login")
    tip = commit_file(Path(wt.path), "fix.txt", "fixed\n")
    (Path(wt.path) / "uncommitted.txt").write_text("stays local\n")

    assert push_branch(wt) == tip
    assert rev(remote, "refs/heads/corral/fix-login") == tip
    assert git(repo, "config", "--get", "branch.corral/fix-login.remote").strip() == "origin"
    merge = git(repo, "config", "--get", "branch.corral/fix-login.merge").strip()
    assert merge == "refs/heads/corral/fix-login"
    # only pause stages everything: push leaves the work tree and the index as they were
    assert git(Path(wt.path), "status", "--porcelain") == "?? uncommitted.txt\n"
    assert "uncommitted.txt" not in git(repo, "ls-tree", "--name-only", tip).split()


def test_push_of_a_paused_branch(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "upstream", str(remote))
    wt = create_worktree(repo, "t")
    (Path(wt.path) / "wip.txt").write_text("wip\n")
    paused = pause_worktree(wt, "t")
    assert push_branch(wt, remote="upstream") == paused.commit
    assert rev(remote, "refs/heads/corral/t") == paused.commit


def test_push_without_the_remote_says_how_to_add_one(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    with pytest.raises(NoRemoteError) as caught:
        push_branch(wt)
    message = str(caught.value)
    assert "has no remote 'origin' (remotes: none)" in message and "git remote add origin" in message
    assert isinstance(caught.value, NotFoundError)


def test_a_rejected_push_reports_what_git_said(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    wt = create_worktree(repo, "t")
    commit_file(Path(wt.path), "a.txt", "a\n")
    push_branch(wt)
    git(Path(wt.path), "commit", "-q", "--amend", "-m", "rewritten")
    with pytest.raises(GitError, match=r"git push .*rejected"):
        push_branch(wt)


# --------------------------------------------------------------------------------------------- diff stats


def test_diff_stats_count_commits_uncommitted_untracked_and_binary_files(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    tree = Path(wt.path)
    commit_file(tree, "src/a.py", "1\n2\n3\n")  # committed: +3
    git(tree, "rm", "-q", "README.md")  # staged deletion: -1
    (tree / "src" / "a.py").write_text("1\nchanged\n3\n4\n")  # unstaged: +2 -1
    (tree / "notes.txt").write_text("x\ny")  # untracked, no final newline: +2
    (tree / "image.bin").write_bytes(b"\x89PNG\0\0\1")  # untracked binary: 0/0
    commit_file(tree, "logo.bin", "")  # empty file then made binary and committed
    (tree / "logo.bin").write_bytes(b"\0\1\2")
    git(tree, "commit", "-q", "-am", "binary")

    stats = diff_stats(wt)
    # a.py (+4 -0 since base), README.md (-1), notes.txt (+2), image.bin, logo.bin
    assert stats == DiffStats(files_changed=5, insertions=6, deletions=1)
    # git agrees once everything is added
    git(tree, "add", "-A")
    assert parse_numstat(git(tree, "diff", "--cached", "--numstat", wt.base_commit)) == stats
    assert diff_stats(wt) == stats


def test_diff_stats_of_a_new_worktree_are_zero(repo: Path) -> None:
    assert diff_stats(create_worktree(repo, "t")) == DiffStats(0, 0, 0)


def test_diff_stats_of_a_paused_worktree_count_its_commits(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    (Path(wt.path) / "a.txt").write_text("a\nb\n")
    pause_worktree(wt, "t")
    assert diff_stats(wt) == DiffStats(1, 2, 0)


def test_diff_stats_ignore_main_moving_on(repo: Path) -> None:
    wt = create_worktree(repo, "t")
    commit_file(repo, "main.txt", "main\n")
    assert diff_stats(wt) == DiffStats(0, 0, 0)


# ---------------------------------------------------------------------------------------- list and errors


def test_list_worktrees_reports_locked_prunable_and_detached(repo: Path) -> None:
    locked = create_worktree(repo, "locked")
    gone = create_worktree(repo, "gone")
    git(repo, "worktree", "lock", "--reason", "keep", locked.path)
    subprocess.run(["rm", "-rf", gone.path], check=True)
    git(repo, "worktree", "add", "-q", "--detach", str(repo / ".worktrees" / "detached"))
    entries = {Path(e.path).name: e for e in list_worktrees(repo)}
    main = entries[repo.name]
    assert main.main and main.branch == "main" and main.head == rev(repo)
    assert entries[Path(locked.path).name].locked and entries[Path(locked.path).name].lock_reason == "keep"
    assert entries[Path(gone.path).name].prunable
    assert entries["detached"].detached and entries["detached"].branch == ""


def test_parse_worktree_list_tolerates_keys_it_does_not_know() -> None:
    out = (
        "worktree /r\nHEAD abc\nbranch refs/heads/main\n\n"
        "worktree /r/w\nHEAD def\nbranch refs/heads/x\nfuture\n"
    )
    main, other = parse_worktree_list(out)
    assert main.main and main.branch == "main"
    assert not other.main and other.branch == "x" and other.head == "def"


def test_git_errors_name_the_command_the_place_and_what_git_said(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        run_git(tmp_path, "rev-parse", "HEAD")
    error = caught.value
    message = str(error)
    assert message.startswith("git rev-parse HEAD (exit 128) in ")
    assert str(tmp_path) in message and "not a git repository" in message
    assert "Traceback" not in message and error.returncode == 128
    assert isinstance(error, CorralError) and error.exit_code == 1


def test_operations_outside_a_repository_fail_with_a_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        create_worktree(tmp_path, "t")


def test_a_git_command_that_runs_too_long_is_stopped(repo: Path) -> None:
    with pytest.raises(GitError, match=r"\(timed out\).*git was stopped"):
        run_git(repo, "log", timeout=1e-6)


def test_a_background_git_says_how_it_exited_and_is_stopped_after_its_timeout(repo: Path) -> None:
    with (
        start_git(repo, "rev-parse", "--verify", "--quiet", "HEAD") as found,
        start_git(repo, "rev-parse", "--verify", "--quiet", "no-such-ref") as missing,
    ):
        assert found.succeeded() and not missing.succeeded()
    with (
        pytest.raises(GitError, match=r"\(timed out\).*git was stopped"),
        # A git that surely outlives its timeout (a plain `git log` may finish before Popen returns).
        start_git(repo, "-c", "alias.nap=!sleep 2", "nap", timeout=0.05),
    ):
        pass  # waited for on leaving the block


def test_missing_git_is_reported_plainly(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo))
    with pytest.raises(GitError, match=r"cannot run git .*install git"):
        run_git(repo, "status")


def test_git_environment_from_a_hook_does_not_redirect_corral(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(tmp_path))
    wt = create_worktree(repo, "t")
    assert Path(wt.path).is_dir()
