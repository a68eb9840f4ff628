"""What a project command needs before it runs: the repository it was started in, the store, the project row.

The repository is found first, so that a command run outside one fails fast (exit 2) without creating or
opening a database; then the store is opened and the repository registers itself as a project.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.store import Store
    from protocols.records import Project

__all__ = ["open_project", "open_store"]


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
    """The store and the current project: the named one if `name` is given, else the repository at cwd.

    Raises NotInRepoError (exit 2) outside a git repository, NotFoundError for an unknown `name`.
    """
    if name:
        with open_store() as store:
            yield store, store.get_project(name)
        return
    from frontends.project import find_project_root

    root = find_project_root()
    with open_store() as store:
        yield store, store.ensure_project(root)
