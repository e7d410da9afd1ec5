"""Small read models the review console needs beyond the queue: counts and an agent's record."""

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from backend.errors import not_found
from backend.services.views import proposal_summary
from models.agents import Agent
from models.common import is_ulid, utcnow
from models.proposals import Proposal, Status

# "Close to expiry" in the queue: the reviewer should pick these first.
SOON = timedelta(hours=1)
HISTORY_ITEMS = 10


def queue_counts(session: Session, action_type: str | None = None) -> dict[str, Any]:
    """Pending totals for the queue header: all, expiring within the hour, claimed, by action type."""
    now = utcnow()
    live = [Proposal.status == Status.pending.value, Proposal.expires_at > now]
    if action_type:
        live.append(Proposal.action_type == action_type)
    by_type = session.exec(
        select(Proposal.action_type, func.count()).where(*live).group_by(Proposal.action_type)
    ).all()
    soon = session.exec(select(func.count()).where(*live, Proposal.expires_at <= now + SOON)).one()
    claimed = session.exec(
        select(func.count()).where(*live, Proposal.claim_expires_at > now)  # type: ignore[operator]
    ).one()
    counts = {name: int(n) for name, n in by_type}
    return {
        "pending": sum(counts.values()),
        "expiring_soon": int(soon),
        "claimed": int(claimed),
        "by_action_type": counts,
    }


def agent_history(session: Session, agent_ref: str) -> dict[str, Any]:
    """How this agent's proposals have fared: counts by status and its latest decided ones."""
    stmt = select(Agent).where(Agent.id == agent_ref) if is_ulid(agent_ref) else None
    agent = session.exec(stmt).first() if stmt is not None else None
    if agent is None:
        agent = session.exec(select(Agent).where(Agent.name == agent_ref)).first()
    if agent is None:
        raise not_found("agent", agent_ref)
    rows = session.exec(
        select(Proposal.status, func.count()).where(Proposal.agent_id == agent.id).group_by(Proposal.status)
    ).all()
    decided = session.exec(
        select(Proposal)
        .where(Proposal.agent_id == agent.id, Proposal.decided_at.is_not(None))  # type: ignore[union-attr]
        .order_by(Proposal.decided_at.desc())  # type: ignore[union-attr]
        .limit(HISTORY_ITEMS)
    ).all()
    return {
        "agent_id": agent.id,
        "agent_name": agent.name,
        "suspended": agent.suspended,
        "breaker_tripped_at": agent.breaker_tripped_at,
        "counts": {status: int(n) for status, n in rows},
        "recent": [proposal_summary(p, agent.name) for p in decided],
    }
