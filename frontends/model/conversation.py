"""A model request, as the scenario sees it whichever API it came by: the prompt, and how many replies the
model has already given to it.

    Conversation(api="anthropic", prompt="# Plan task fix-login: …", turn=2, cwd="/repo", tools=("Bash",…))

`turn` is counted from the conversation the client sends (the replies after the latest prompt), never
kept on the server, so a retried request is the same turn and a restarted agent that resumes its
conversation carries on where it was. A reply the model marked invalid (a `bad-tool` fault) is not
counted: its turn is played again, properly. Each API module builds one from its own request body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["INVALID_PREFIX", "Conversation", "RequestError", "working_directory"]

INVALID_PREFIX = "invalid_"
"""The start of a tool call id the model sent as a `bad-tool` fault (`toolu_invalid_…`, `call_invalid_…`)."""


class RequestError(ValueError):
    """A request body the model cannot read (not JSON, no messages…): answered 400 with this message."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a scenario needs from one request. `side` names a request the CLI makes apart from the agent's
    work ("title", "no tools"…), answered apart and never counted as a turn; "" for the agent's own."""

    api: Literal["anthropic", "openai"]
    prompt: str
    turn: int
    cwd: str = ""
    tools: tuple[str, ...] = ()
    model: str = ""
    stream: bool = True
    side: str = ""


_CLAUDE_CWD = re.compile(r"^[ \t*-]*Primary working directory:\s*(\S.*?)\s*$", re.MULTILINE)
_CODEX_CWD = re.compile(r"<cwd>\s*(.*?)\s*</cwd>", re.DOTALL)


def working_directory(*texts: str) -> str:
    """The agent's working directory as its CLI tells the model (claude: `Primary working directory: …`
    in the system prompt; codex: `<cwd>…</cwd>` in its environment context); "" when none says."""
    for text in texts:
        found = _CLAUDE_CWD.search(text) or _CODEX_CWD.search(text)
        if found:
            return found.group(1)
    return ""
