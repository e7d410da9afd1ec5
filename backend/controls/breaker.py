"""The circuit breaker: tripped by a crossed budget or guard, reset by an admin.

A tripped breaker caps the agent's dials at ``draft`` (``backend/controls/autonomy.py``).
Placement trips it from ``backend/controls/budgets/ledger.py``, inside the write
transaction: on SQLite that transaction holds the database's write lock; on PostgreSQL the
agent's guard row is locked (by the upsert's ``DO UPDATE`` on placement, ``FOR UPDATE`` on a
reset), so an agent's concurrent proposals pass one at a time.
"""

from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from backend.audit import chain as audit
from models.agents import Agent
from models.audit import AuditAction
from models.common import utcnow
from models.policies import AgentGuard


def _insert(session: Session) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _guard_row(session: Session, agent: Agent) -> AgentGuard:
    """The agent's guard row, locked for this transaction on PostgreSQL."""
    ins = _insert(session)(AgentGuard).values(agent_id=agent.id, recent_tool_calls=[], recent_denials=[])
    session.execute(ins.on_conflict_do_nothing(index_elements=["agent_id"]))
    stmt = select(AgentGuard).where(AgentGuard.agent_id == agent.id)
    if _is_pg(session):
        stmt = stmt.with_for_update()
        guard = session.exec(stmt.execution_options(populate_existing=True)).one()
        # Another request may have tripped the breaker while we waited for the lock.
        session.refresh(agent, ["breaker_tripped_at", "breaker_reason", "suspended"])
        return guard
    return session.exec(stmt).one()


def trip(session: Session, agent: Agent, reason: str, data: dict[str, Any]) -> bool:
    """Trip the agent's breaker (once; later crossings only flag their proposals)."""
    now = utcnow()
    result = session.execute(
        update(Agent)
        .where(Agent.id == agent.id, Agent.breaker_tripped_at.is_(None))  # type: ignore[union-attr]
        .values(breaker_tripped_at=now, breaker_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        if agent.breaker_tripped_at is None:
            agent.breaker_tripped_at, agent.breaker_reason = now, reason
        return False
    agent.breaker_tripped_at, agent.breaker_reason = now, reason
    audit.record(
        session, "system", AuditAction.BREAKER_TRIPPED, f"agent:{agent.id}", {"reason": reason, **data}
    )
    return True


def reset(session: Session, agent: Agent, actor: str, reason: str = "") -> None:
    """An admin closes the breaker again; the denial window starts afresh."""
    # The guard row first, in the same order as placing a proposal (no deadlock on PostgreSQL).
    guard = _guard_row(session, agent)
    if agent.breaker_tripped_at is None:
        return
    before = agent.breaker_reason
    agent.breaker_tripped_at = None
    agent.breaker_reason = None
    agent.updated_at = utcnow()
    session.add(agent)
    guard.recent_denials = []
    session.add(guard)
    audit.record(
        session, actor, AuditAction.BREAKER_RESET, f"agent:{agent.id}", {"reason": reason, "was": before}
    )
