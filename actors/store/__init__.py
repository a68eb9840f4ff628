"""corral's durable state: one SQLite database (apsw, WAL) shared by every process of every project.

Imports neither pykka nor aiohttp nor blessed: `corral signal emit`, which agents run all the time, loads only
this package, apsw and msgspec. See docs/store.md for the tables, the signal lifecycle and why a signal is
applied exactly once.
"""

from actors.store.audit import AuditEntry
from actors.store.db import default_db_path
from actors.store.migrations import SCHEMA_VERSION
from actors.store.store import Store, StoreStatistics

__all__ = ["SCHEMA_VERSION", "AuditEntry", "Store", "StoreStatistics", "default_db_path"]
