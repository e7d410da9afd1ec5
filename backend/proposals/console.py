"""Small read models the review console needs beyond the queue: counts and an agent's record."""

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from backend.agents import lookup
from backend.proposals import queue
from models.common import utcnow
from models.proposals import Proposal, Status

# "Close to expiry" in the queue: the reviewer should pick these first.
SOON = timedelta(hours=1)
HISTORY_ITEMS = 10
# How many of an agent's latest proposals its record covers.
WINDOW = 1000


def queue_counts(session: Session, action_type: str | None = None) -> dict[str, Any]:
    """Pending totals for the queue header: all, due within the hour, and being reviewed.

    The first two are answered from the queue index alone; no per-type breakdown, which would
    read every pending row (100 ms at 100,000 pending on SQLite).
    """
    now = utcnow()
    live = [Proposal.status == Status.pending.value, Proposal.expires_at > now]
    if action_type:
        live.append(Proposal.action_type == action_type)
    pending = session.exec(select(func.count()).where(*live)).one()
    soon = session.exec(select(func.count()).where(*live, Proposal.expires_at <= now + SOON)).one()
    claimed = session.exec(
        select(func.count()).where(*live, Proposal.claim_expires_at > now)  # type: ignore[operator]
    ).one()
    return {"pending": int(pending), "expiring_soon": int(soon), "claimed": int(claimed)}


def agent_history(session: Session, agent_ref: str, unmask: bool = True) -> dict[str, Any]:
    """How this agent's proposals have fared: counts by status and its latest decided ones."""
    agent = lookup.find(session, agent_ref)
    # The latest proposals only (through the agent/created_at index): a reviewer wants the recent
    # record, and a busy agent's whole past would cost a scan on every review screen.
    latest = (
        select(Proposal.id)
        .where(Proposal.agent_id == agent.id)
        .order_by(Proposal.created_at.desc())  # type: ignore[attr-defined]
        .limit(WINDOW)
        .subquery()
    )
    in_window = Proposal.id.in_(select(latest.c.id))  # type: ignore[attr-defined]
    rows = session.exec(
        select(Proposal.status, func.count()).where(in_window).group_by(Proposal.status)
    ).all()
    decided = session.exec(
        select(Proposal)
        .where(in_window, Proposal.decided_at.is_not(None))  # type: ignore[union-attr]
        .order_by(Proposal.decided_at.desc())  # type: ignore[union-attr]
        .limit(HISTORY_ITEMS)
    ).all()
    return {
        "agent_id": agent.id,
        "agent_name": agent.name,
        "suspended": agent.suspended,
        "breaker_tripped_at": agent.breaker_tripped_at,
        "window": WINDOW,
        "counts": {status: int(n) for status, n in rows},
        "recent": queue.summaries(session, decided, unmask),
    }
