"""A private corral for one run: a scratch repository, database, runtime directory and tmux server of its
own, a daemon (under its heart) started there, and a cleanup that removes all of it. `corral demo` and
`corral chaos` run in one.

    sandbox = Sandbox(Scratch.make("corral-demo-"), sim=corral_sim())
    with private_environment(sandbox.scratch.environment()), terminate_as_interrupt():
        sandbox.make_repo()
        started = sandbox.start_daemon(timeout=20)
        ...                                           # the daemon's API: sandbox.client
    problems = sandbox.clean_up(keep=False)           # never raises, cannot be interrupted

Everything is the sandbox's own: a temporary directory holding a git repository (`repo/`), a database
(`home/`, as CORRAL_HOME), a runtime directory (`run/`: the daemon's socket, pid lock and log) and a tmux
server on a socket of its own (CORRAL_TMUX_SOCKET). They are set in this process's environment before its
daemon is started, so that the daemon and every agent it starts inherit them: the user's tasks, database,
daemon and tmux server are never seen. CORRAL_SIM_AUTO_APPROVE goes the same way, because `[resources.env]`
may not set CORRAL_* variables. Every agent is corral-sim (`default_program` of the repository's config).

Cleanup stops the daemon and its heart (killed if they do not stop), kills the tmux server and removes the
directory unless kept; Ctrl-C and SIGTERM cannot cut it short.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocols.errors import CorralError

if TYPE_CHECKING:
    from frontends.daemon import DaemonClient
    from frontends.daemon.spawn import Started

__all__ = [
    "Sandbox",
    "Scratch",
    "branch_commits",
    "corral_sim",
    "private_environment",
    "require_tools",
    "shielded",
    "terminate_as_interrupt",
]


@dataclass(frozen=True, slots=True)
class Scratch:
    """The temporary directory of one run and the names derived from it."""

    root: Path
    socket: str

    @classmethod
    def make(cls, prefix: str) -> Scratch:
        """A new directory `/tmp/<prefix>XXXX` (mode 0700) with `home/` and `run/` in it; the tmux socket
        is named after the prefix, this process and a random tag."""
        root = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
        scratch = cls(root, f"{prefix}{os.getpid()}-{secrets.token_hex(2)}")
        scratch.home.mkdir(mode=0o700)
        scratch.runtime.mkdir(mode=0o700)
        os.chmod(scratch.runtime, 0o700)  # mkdir's mode is filtered by the umask; the daemon requires 0700
        return scratch

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def runtime(self) -> Path:
        return self.root / "run"

    def environment(self) -> dict[str, str | None]:
        """The variables the run sets (None: removed) for itself, its daemon and the daemon's agents."""
        from protocols.config import MANAGED_ENV_KEYS

        # An agent's own variables (a run inside an agent's session) and a git override would point the run
        # at someone else's task or repository.
        cleared = [*MANAGED_ENV_KEYS, "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE"]
        return {
            **dict.fromkeys(cleared),
            "CORRAL_HOME": str(self.home),
            "CORRAL_RUNTIME_DIR": str(self.runtime),
            "CORRAL_TMUX_SOCKET": self.socket,
            "CORRAL_SIM_AUTO_APPROVE": "1",
        }


@contextmanager
def private_environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with `changes` applied, restored on exit."""
    before = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so that a terminated run cleans up as an interrupted one does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored while the body runs: a cleanup cut short leaves a daemon behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def corral_sim() -> str:
    """The simulated agent's absolute path: beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("corral-sim")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("corral-sim")
    if found is None:
        raise CorralError(
            f"the agents are corral-sim, which is neither beside {sys.executable} nor on PATH: "
            "install corral with its scripts (pip install -e . in its source tree, or make demo)"
        )
    return str(Path(found).absolute())


def require_tools(command: str) -> None:
    """CorralError naming what is missing when git or tmux is not on PATH."""
    missing = [tool for tool in ("git", "tmux") if shutil.which(tool) is None]
    if missing:
        raise CorralError(
            f"{command} needs {' and '.join(missing)}, not found on PATH: "
            "corral doctor says how to install it"
        )


def branch_commits(repo: Path, branch: str) -> list[tuple[str, int, str]]:
    """(short sha, commit time, subject) of the commits on `branch` that main does not have, oldest first."""
    from actors.git.runner import git_succeeds, run_git

    if not branch or not git_succeeds(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"):
        return []
    out = run_git(repo, "log", "--reverse", "--format=%h%x09%ct%x09%s", f"main..refs/heads/{branch}")
    fields = (line.split("\t", 2) for line in out.splitlines())
    return [(sha, int(when), subject) for sha, when, subject in fields]


class Sandbox:
    """One private corral: its scratch directory, its daemon's client, the pids it started; `clean_up`
    whatever happened. Use it inside `private_environment(scratch.environment())`."""

    def __init__(self, scratch: Scratch, sim: str, *, name: str = "corral") -> None:
        from frontends.daemon import DaemonClient

        self.scratch = scratch
        self.sim = sim
        self.name = name  # in the repository's first commit and the messages: "the demo", "chaos"
        self.client: DaemonClient = DaemonClient(scratch.runtime)
        self.daemon_pid: int | None = None
        self.heart_pid: int | None = None
        self.pids: set[int] = set()  # every daemon and heart pid seen, so cleanup can make sure of them

    def make_repo(self, config: Iterable[str] = ()) -> None:
        """A git repository with a README and a `.corral/config.toml` that runs every agent as corral-sim,
        with the TOML lines `config` added."""
        from actors.git.runner import run_git
        from frontends.cli.setup import EXCLUDED

        repo = self.scratch.repo
        repo.mkdir()
        run_git(repo, "init", "-q")
        run_git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
        for key, value in (
            ("user.name", f"corral {self.name}"),
            ("user.email", f"{self.name}@corral.invalid"),
            ("commit.gpgsign", "false"),
        ):
            run_git(repo, "config", key, value)
        (repo / "README.md").write_text(
            f"# A scratch project\n\nMade by `corral {self.name}`, removed when it ends.\n"
        )
        path = repo / ".corral" / "config.toml"
        path.parent.mkdir()
        # A JSON string is a TOML basic string for any path.
        lines = [f"default_program = {json.dumps(self.sim)}", "auto_yes = true", *config]
        path.write_text("".join(f"{line}\n" for line in lines))
        (repo / ".git" / "info").mkdir(exist_ok=True)
        (repo / ".git" / "info" / "exclude").write_text("".join(f"{line}\n" for line in EXCLUDED))
        run_git(repo, "add", "README.md", ".corral/config.toml")
        run_git(repo, "commit", "-q", "-m", "Initial commit")

    def start_daemon(self, timeout: float) -> Started:
        """Start the sandbox's daemon under its heart and wait until it answers."""
        started = self.client.autostart(start_timeout=timeout)
        self.daemon_pid, self.heart_pid = started.pid, started.heart_pid
        self.pids.update(pid for pid in (started.pid, started.heart_pid) if pid is not None)
        return started

    def clean_up(self, *, keep: bool) -> list[str]:
        """Stop the daemon and its heart, kill the tmux server, remove the directory unless `keep`. Never
        raises, and cannot be interrupted; returns the problems met."""
        problems: list[str] = []
        root = self.scratch.root
        with shielded():
            self._stop_daemon(problems)
            kill_tmux(self.scratch.socket, problems)
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
                if root.exists():
                    problems.append(f"could not remove {root}: remove it with rm -rf {root}")
        return problems

    def _stop_daemon(self, problems: list[str]) -> None:
        """Stop the daemon and its heart in order; kill what is left. Both are frozen (SIGSTOP) before either
        is killed: a heart would restart a killed daemon, and a daemon would replace a killed heart."""
        from frontends.daemon import DaemonError
        from frontends.daemon.lock import lock_holder, pid_alive

        paths = self.client.paths
        holders = (lock_holder(paths.pid_file), lock_holder(paths.heart_pid_file))
        pids = {self.daemon_pid, self.heart_pid, *self.pids, *holders}
        try:
            self.client.stop(timeout=30)
        except (DaemonError, OSError) as exc:
            problems.append(f"the {self.name}'s daemon did not stop in order, so it was killed: {exc}")
        left = [pid for pid in pids if pid is not None and pid_alive(pid)]
        for signum in (signal.SIGSTOP, signal.SIGKILL):
            for pid in left:
                try:
                    os.kill(pid, signum)
                except OSError:
                    pass


def kill_tmux(socket: str, problems: list[str]) -> None:
    """Kill the tmux server on `socket` and remove its agents' output FIFOs; a failure is a problem."""
    from actors.runtimes.tmux_server import TmuxServer

    server = TmuxServer(socket)
    try:
        server.kill()
    except (CorralError, OSError) as exc:
        problems.append(f"could not kill the tmux server ({exc}): tmux -L {socket} kill-server")
    shutil.rmtree(server.run_dir, ignore_errors=True)
