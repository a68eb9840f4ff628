"""Which turn a conversation gets: the script its prompt matches (or the lifecycle scenario), at the
conversation's turn index. Pure: the answer depends on the scenario and the request alone.

    choice = choose(scenario, conversation)   # → Choice(turn, key, source, role)

Past the last turn of a script, the model says it is done (a text reply ends the agent's turn), so an agent
that asks again after its work is never sent round the script a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from frontends.model.conversation import Conversation
from frontends.model.lifecycle import lifecycle_turns
from frontends.model.roles import role_of
from frontends.model.scenario import Scenario, Turn

__all__ = ["DONE", "Choice", "choose"]

DONE = "Done: the scenario has no more turns for this prompt."
_NOTHING = (
    "corral-model: no script of the scenario matches this prompt, so this is all I say. "
    '(Add a [[script]] for it, or set otherwise = "lifecycle".)'
)


@dataclass(frozen=True, slots=True)
class Choice:
    """The turn to play; `key` identifies it for fault counts, `source` and `role` say why it was chosen
    (for the request log)."""

    turn: Turn
    key: tuple[str, int]
    source: str
    role: str


def choose(scenario: Scenario, conversation: Conversation) -> Choice:
    role = role_of(conversation.prompt)
    found = scenario.script_for(role, conversation.prompt)
    if found is not None:
        index, script = found
        turns, source = script.turns, script.name
        if not turns:
            lifecycle = lifecycle_turns(conversation.prompt)
            turns = tuple(replace(turn, fault=turn.fault or script.fault) for turn in lifecycle)
            source = f"{script.name}: lifecycle ({role or 'no role'})"
    elif scenario.otherwise == "lifecycle":
        turns, source = lifecycle_turns(conversation.prompt), f"lifecycle ({role or 'no role'})"
        index = -1
    else:
        turns, source, index = (Turn(say=_NOTHING),), "no script", -2
    at = conversation.turn
    turn = turns[at] if at < len(turns) else Turn(say=DONE)
    return Choice(turn=turn, key=(f"script {index}", at), source=source, role=role)
