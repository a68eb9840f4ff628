"""What the daemon could not write: the view shown by `corral daemon status` and `GET /v1/status`.

    WriteFaults(problem="audit: cannot write the corral database …: the disk holding … is full", since=…,
                audit_rows_dropped=12)

A daemon whose disk fills up degrades instead of dying: its writers keep running, count what they had to
drop, and retry until the database can be written again (docs/store.md, "A full disk").
"""

from __future__ import annotations

import msgspec

__all__ = ["WriteFaults"]


class WriteFaults(msgspec.Struct, frozen=True, kw_only=True):
    """The writers that are failing now (`problems`, each "<writer>: <error>"; empty when all is written),
    since when, and what was dropped since the daemon started."""

    problems: tuple[str, ...] = ()
    since: str = ""  # UTC stamp of the oldest problem still going on; "" when there is none
    audit_rows_dropped: int = 0  # audit rows never written (the recorder could not keep them all)
    log_lines_dropped: int = 0  # lines of the daemon's own log that could not be written

    @property
    def ok(self) -> bool:
        return not self.problems
