"""Whether an agent may act now: its own suspension and the global kill switch.

Three callers ask, and all get their answer here: the API dependency for an agent's own
calls (``backend/api/deps.py``), placement, which also audits the refusal
(``backend/proposals/batch.py``), and a reviewer's approval
(``backend/proposals/decisions.py``). The status code says who is being refused, chosen
once for all three:

- **403** (``permission_error``) when the caller *is* the stopped agent: it may not act;
- **409** (``conflict_error``) when a reviewer approves a stopped agent's proposal: the
  reviewer may act, but the proposal's state forbids it until the agent is resumed.

When both switches are on, the kill switch is named: it is the one an operator must
release first.
"""

from enum import Enum

from sqlmodel import Session

from backend.controls import kill_switch
from backend.core.errors import ApiError
from models.agents import Agent

KILL_SWITCH_ENGAGED = "kill_switch_engaged"
AGENT_SUSPENDED = "agent_suspended"


class Asker(Enum):
    """Who wants the stopped agent to act: the agent itself, or a reviewer approving."""

    agent = 403
    reviewer = 409


_MESSAGES = {
    (KILL_SWITCH_ENGAGED, Asker.agent): "The global kill switch is engaged.",
    (AGENT_SUSPENDED, Asker.agent): "This agent is suspended.",
    (KILL_SWITCH_ENGAGED, Asker.reviewer): "The global kill switch is engaged; nothing can be approved.",
    (AGENT_SUSPENDED, Asker.reviewer): "The agent is suspended; its proposals cannot be approved.",
}


def refusal(agent: Agent, kill_switch_engaged: bool, asker: Asker) -> ApiError | None:
    """The refusal for ``agent`` acting now, or None when it may act."""
    if kill_switch_engaged:
        code = KILL_SWITCH_ENGAGED
    elif agent.suspended:
        code = AGENT_SUSPENDED
    else:
        return None
    return ApiError(asker.value, code, _MESSAGES[code, asker])


def check(session: Session, agent: Agent, asker: Asker) -> None:
    """Raise the refusal for ``agent`` acting now, reading the kill switch from ``session``."""
    error = refusal(agent, kill_switch.engaged(session), asker)
    if error is not None:
        raise error
