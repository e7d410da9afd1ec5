"""Budgets, guards and the circuit breaker.

Each proposal is charged against its agent's usage for the UTC day and checked against
the agent's budgets (agent-wide, and the ones for its action type) and two guards: a
tool-call spike (more than 3x the agent's recent median) and repeated policy denials
(3 in 10 minutes). Crossing any trips the agent's breaker, which caps its dials at
``draft`` until an admin resets it; the proposal is still accepted and flagged.

Placement charges proposals through ``ledger.Ledger``, inside the write transaction:
on SQLite that transaction holds the database's write lock; on PostgreSQL the agent's
guard row is locked (by the upsert's ``DO UPDATE`` on placement, ``FOR UPDATE`` on a
breaker reset), so an agent's concurrent proposals pass one at a time.
"""

import statistics
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.catalog import action_types
from backend.core.errors import ApiError
from models.agents import Agent
from models.audit import AuditAction
from models.common import utcnow
from models.policies import AgentGuard, AgentUsage, Budget, BudgetSpec

TOOL_CALL_WINDOW = 50
TOOL_CALL_MIN_SAMPLES = 10
TOOL_CALL_SPIKE_FACTOR = 3
DENIAL_WINDOW = timedelta(minutes=10)
DENIAL_LIMIT = 3


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


def usage(session: Session, agent_id: str, day: str, action_type: str | None = None) -> tuple[int, float]:
    """(proposals, cost_usd) for one day, for one action type or all of them."""
    stmt = select(
        func.coalesce(func.sum(AgentUsage.proposals), 0), func.coalesce(func.sum(AgentUsage.cost_usd), 0.0)
    ).where(AgentUsage.agent_id == agent_id, AgentUsage.day == day)
    if action_type:
        stmt = stmt.where(AgentUsage.action_type == action_type)
    proposals, cost = session.exec(stmt).one()
    return int(proposals), float(cost)


def crossed(
    session: Session, budget: Budget, agent_id: str, day: str, action_type: str, context: dict[str, Any]
) -> list[str]:
    crossed: list[str] = []
    if budget.allowed_action_types is not None and action_type not in budget.allowed_action_types:
        crossed.append("allowed_action_types")
    tool_calls, tokens = context.get("tool_calls"), context.get("tokens")
    limit = budget.max_tool_calls_per_task
    if limit is not None and tool_calls is not None and tool_calls > limit:
        crossed.append("max_tool_calls_per_task")
    if budget.max_tokens_per_task is not None and tokens is not None and tokens > budget.max_tokens_per_task:
        crossed.append("max_tokens_per_task")
    if budget.max_proposals_per_day is not None or budget.max_cost_usd_per_day is not None:
        proposals, cost = usage(session, agent_id, day, budget.action_type or None)
        if budget.max_proposals_per_day is not None and proposals > budget.max_proposals_per_day:
            crossed.append("max_proposals_per_day")
        if budget.max_cost_usd_per_day is not None and cost > budget.max_cost_usd_per_day + 1e-9:
            crossed.append("max_cost_usd_per_day")
    return crossed


def spike_in(recent: list[int], tool_calls: int) -> bool:
    """True when this task's tool calls exceed 3x the agent's recent median."""
    if len(recent) < TOOL_CALL_MIN_SAMPLES:
        return False
    # A median of 0 would make any single tool call a "spike"; count it as 1.
    return bool(tool_calls > TOOL_CALL_SPIKE_FACTOR * max(statistics.median(recent), 1))


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


# --- budgets as admins see them ---------------------------------------------------------


def _public(row: Budget) -> dict[str, Any]:
    return {
        "action_type": row.action_type or None,
        "allowed_action_types": row.allowed_action_types,
        "max_tool_calls_per_task": row.max_tool_calls_per_task,
        "max_tokens_per_task": row.max_tokens_per_task,
        "max_proposals_per_day": row.max_proposals_per_day,
        "max_cost_usd_per_day": row.max_cost_usd_per_day,
    }


def view(session: Session, agent: Agent) -> dict[str, Any]:
    rows = session.exec(select(Budget).where(Budget.agent_id == agent.id).order_by(Budget.action_type)).all()
    proposals, cost = usage(session, agent.id, utcnow().date().isoformat())
    return {
        "agent_id": agent.id,
        "budgets": [_public(r) for r in rows],
        "usage_today": {"proposals": proposals, "cost_usd": round(cost, 6)},
        "breaker_tripped_at": agent.breaker_tripped_at,
        "breaker_reason": agent.breaker_reason,
    }


def replace(session: Session, agent: Agent, specs: list[BudgetSpec], actor: str) -> dict[str, Any]:
    """Set the agent's budgets (the list replaces what was there), audited with before and after."""
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        key = spec.action_type or ""
        if key in seen:
            raise ApiError(
                422,
                "duplicate_budget",
                f"Two budgets for {key or 'the agent as a whole'}.",
                param=f"budgets.{i}",
            )
        seen.add(key)
        for name in [*([spec.action_type] if spec.action_type else []), *(spec.allowed_action_types or [])]:
            if action_types.get(session, name) is None:
                raise ApiError(
                    422, "unknown_action_type", f"No action type named {name!r}.", param=f"budgets.{i}"
                )
    before = view(session, agent)["budgets"]
    for row in session.exec(select(Budget).where(Budget.agent_id == agent.id)).all():
        session.delete(row)
    session.flush()
    for spec in specs:
        values = spec.model_dump()
        values["action_type"] = values["action_type"] or ""
        session.add(Budget(agent_id=agent.id, **values))
    session.flush()
    after = view(session, agent)
    audit.record(
        session,
        actor,
        AuditAction.BUDGETS_UPDATED,
        f"agent:{agent.id}",
        {"from": before, "to": after["budgets"]},
    )
    return after
