"""What a daemon runs with, and what "reload the configuration" re-reads.

    config = DaemonConfig.load(paths)         # the runtime directory, the database, the version
    problems = check_repo_configs(projects)   # each registered repository's .corral/config.toml, re-read

The daemon has no configuration file of its own yet: its settings come from the environment (`CORRAL_HOME`,
`CORRAL_RUNTIME_DIR`). The repositories' `.corral/config.toml` files are read per agent spawn; a reload
re-reads them all and reports every problem at once, so a mistake shows up on SIGHUP rather than at the next
spawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec

from actors.store import default_db_path
from frontends.daemon.paths import RuntimePaths
from protocols.config import load_config
from protocols.errors import ConfigError
from protocols.records import Project

__all__ = ["DaemonConfig", "check_repo_configs"]


class DaemonConfig(msgspec.Struct, frozen=True):
    """One daemon's settings; immutable (a reload makes a new one)."""

    runtime_dir: str
    database: str
    version: str
    checkpoint_every_s: float = 30.0  # how often the WAL is checkpointed (see docs/store.md)

    @classmethod
    def load(cls, paths: RuntimePaths) -> DaemonConfig:
        from frontends.cli.main import version

        return cls(runtime_dir=str(paths.dir), database=str(default_db_path()), version=version())

    @property
    def paths(self) -> RuntimePaths:
        return RuntimePaths(Path(self.runtime_dir))


def check_repo_configs(projects: Iterable[Project]) -> list[str]:
    """Re-read each project's `.corral/config.toml`; one line per problem (a missing file is no problem:
    the defaults apply; a missing repository is)."""
    problems = []
    for project in projects:
        root = Path(project.root)
        if not root.is_dir():
            problems.append(f"{project.name}: the repository {root} no longer exists")
            continue
        try:
            load_config(root)
        except ConfigError as exc:  # names the file, the key and the reason; unreadable files too
            problems.append(f"{project.name}: {exc}")
    return problems
