"""Instance titles: which ones are accepted, and which instance a partial title names. Pure functions.

    check_title("fix the login ✓")                 # → "fix the login ✓"
    check_title("a/b")                             # UsageError: may not contain '/'
    match_title("fix-lo", ["fix-login", "docs"])   # → ["fix-login"]

A title is the Instance's child id (`root/project:app/<title>`), the source of its branch and tmux session
names (each made safe on its own: `actors/git/names.py`, `actors/runtimes/tmux_server.py`), and one segment of
the control API's paths (`/v1/repos/{project}/instances/{title}`). So a title is refused only for what would
make one of those ambiguous: a `/` (a second path segment, a nested actor path), control characters, a
leading `-` (read as an option by the CLI), the dot segments `.` and `..` (a URL client or server normalizes
them away) and surrounding whitespace. Everything else — spaces, unicode, `@{`, braces, `%`, `?`, `#` — is
accepted and can be addressed: the CLI percent-encodes the segment and the routes match any segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from protocols.errors import UsageError

__all__ = ["TITLE_MAX", "AmbiguousTitle", "check_title", "match_title"]

TITLE_MAX = 100
"""The longest title, in characters."""

_BAD = re.compile(r"[/\x00-\x1f\x7f]")


class AmbiguousTitle(UsageError):
    """A partial title names several instances; `matches` are their titles."""

    def __init__(self, project: str, query: str, matches: Sequence[str]) -> None:
        self.matches = tuple(matches)
        super().__init__(
            f'"{query}" matches {len(self.matches)} instances of project {project}: '
            f"{', '.join(self.matches)}; give more of the title"
        )


def check_title(title: str) -> str:
    """`title` if it can name an instance; UsageError saying which rule it breaks."""
    if not title.strip():
        raise UsageError("an instance needs a title, e.g. fix-login")
    if title != title.strip():
        raise UsageError(f"instance title {title!r} starts or ends with whitespace")
    if len(title) > TITLE_MAX:
        raise UsageError(f"instance title is {len(title)} characters long; at most {TITLE_MAX}")
    if _BAD.search(title):
        raise UsageError(f"instance title {title!r} may not contain '/' or control characters")
    if title.startswith("-"):
        raise UsageError(f"instance title {title!r} may not start with '-'")
    if title in (".", ".."):
        raise UsageError(f"instance title {title!r} is a path segment of its own; add a letter or two")
    return title


def match_title(query: str, titles: Iterable[str]) -> list[str]:
    """The titles `query` names: the exact one; else those it begins; else those containing it (case-blind
    from the prefix step on). One result is a match, several an ambiguity, none a miss."""
    known = list(titles)
    if query in known:
        return [query]
    folded = query.casefold()
    for test in (str.startswith, str.__contains__):
        found = [t for t in known if test(t.casefold(), folded)]
        if found:
            return found
    return []
