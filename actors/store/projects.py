"""Projects: a repository registers itself the first time a corral command runs in it."""

from __future__ import annotations

from pathlib import Path

from actors.store.base import StoreBase
from actors.store.rows import PROJECT_COLUMNS, select_list
from protocols.errors import NotFoundError, UsageError
from protocols.records import Project

__all__ = ["ProjectsMixin"]

_BY_ROOT = f"SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.root = ?"
_BY_NAME = f"SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.name = ?"
_NAME_TAKEN = "SELECT 1 FROM projects WHERE name = ?"
_INSERT = (
    f"INSERT INTO projects (name, root, created_at) VALUES (?, ?, ?) RETURNING {select_list(Project, '')}"
)
_ALL = f"SELECT {PROJECT_COLUMNS} FROM projects p ORDER BY p.name"


class ProjectsMixin(StoreBase):
    def ensure_project(self, root: Path) -> Project:
        """The project rooted at `root`, registered now if it is new.

        Its name is the root's basename; if another root already has that name, the first free of name-2,
        name-3… Runs under the write lock, so two commands starting in a new repository register it once.
        """
        resolved = Path(root).expanduser().resolve()
        base = resolved.name
        if not base:
            raise UsageError(f"{resolved} cannot be a project: a project is a repository directory, not /")
        with self._write():
            row = self._conn.execute(_BY_ROOT, (str(resolved),)).fetchone()
            if row is not None:
                return Project(*row)
            name, suffix = base, 1
            while self._conn.execute(_NAME_TAKEN, (name,)).get is not None:
                suffix += 1
                name = f"{base}-{suffix}"
            row = self._conn.execute(_INSERT, (name, str(resolved), self._now())).fetchone()
            return Project(*row)

    def get_project(self, name_or_root: str) -> Project:
        """The project with this name, or else rooted at this path; NotFoundError if neither."""
        row = self._conn.execute(_BY_NAME, (name_or_root,)).fetchone()
        if row is None:
            root = str(Path(name_or_root).expanduser().resolve())
            row = self._conn.execute(_BY_ROOT, (root,)).fetchone()
        if row is None:
            names = ", ".join(p.name for p in self.list_projects()) or "none yet"
            raise NotFoundError(f'no project named "{name_or_root}" (projects: {names})')
        return Project(*row)

    def list_projects(self) -> list[Project]:
        return [Project(*row) for row in self._conn.execute(_ALL)]
