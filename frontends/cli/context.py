"""What a project command needs before it runs: the repository it was started in, the store, the project row.

The repository is found first, so that a command run outside one fails fast (exit 2) without creating or
opening a database; then the store is opened and the repository registers itself as a project.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.store import Store
    from protocols.records import Project

__all__ = ["PROJECT_HELP", "add_project_option", "open_project", "open_store"]

PROJECT_HELP = (
    "the project's name, or a path inside its repository, instead of the repository at the current directory"
)


def add_project_option(parser: Any) -> None:
    """`--project NAME|PATH` on a command that acts on one project (`open_project(args.project)`)."""
    parser.add_argument("--project", metavar="NAME|PATH", default="", help=PROJECT_HELP)


@contextmanager
def open_store() -> Iterator[Store]:
    """The store at its default path ($CORRAL_HOME/corral.db…), closed on exit.

    A damaged page met while reading (apsw's CorruptError: short commands do not check the whole file when
    they open it) becomes a StoreError with the way out, not "a bug in corral"."""
    from actors.store import Store

    store = Store.open()
    try:
        yield store
    except Exception as exc:
        from actors.store.db import ENVIRONMENT_ERRORS, store_error

        if isinstance(exc, ENVIRONMENT_ERRORS):
            raise store_error(exc, store.path, "read") from None
        raise
    finally:
        store.close()


@contextmanager
def open_project(name: str = "") -> Iterator[tuple[Store, Project]]:
    """The store and a project: `name` given, the registered project of that name, else the one whose
    repository holds that path (registered now if it is new); else the repository at cwd.

    Raises NotInRepoError (exit 2) outside a git repository, NotFoundError for an unknown `name` (exit 1).
    """
    if name:
        with open_store() as store:
            yield store, _named_project(store, name)
        return
    from frontends.project import find_project_root

    root = find_project_root()
    with open_store() as store:
        yield store, store.ensure_project(root)


def _named_project(store: Store, name: str) -> Project:
    from protocols.errors import NotFoundError, NotInRepoError

    try:
        return store.get_project(name)
    except NotFoundError as missing:
        path = Path(name).expanduser()
        try:
            is_dir = path.is_dir()
        except (OSError, ValueError):  # a name too long for a path, say: it names no directory
            is_dir = False
        if not is_dir:
            raise
        from frontends.project import find_project_root

        try:
            root = find_project_root(path)
        except NotInRepoError:
            raise NotInRepoError(f"{missing}; {name} is a directory, but not in a git repository") from None
        return store.ensure_project(root)
