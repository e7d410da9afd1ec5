"""Finding an agent by its id or its name: the one rule every caller uses.

People and scripts name agents both ways (``refund-bot`` or ``01J...``), in paths, filters
and the CLI. An identifier that looks like a ULID is tried as an id first; failing that,
and for anything else, as a name (names are unique).
"""

from sqlmodel import Session, select

from backend.core.errors import not_found
from models.agents import Agent
from models.common import is_ulid


def find_or_none(session: Session, ident: str) -> Agent | None:
    """The agent with this id or name, or None."""
    agent = session.get(Agent, ident) if is_ulid(ident) else None
    if agent is None:
        agent = session.exec(select(Agent).where(Agent.name == ident)).first()
    return agent


def find(session: Session, ident: str) -> Agent:
    """The agent with this id or name; 404 when there is none."""
    agent = find_or_none(session, ident)
    if agent is None:
        raise not_found("agent", ident)
    return agent


def id_of(session: Session, ident: str) -> str:
    """For filters: the id of the agent with this id or name, or an id that matches no row
    (an empty string), so that filtering by an unknown agent finds nothing."""
    agent = find_or_none(session, ident)
    return agent.id if agent is not None else ""
