"""Budgets as admins see and set them: the limits per agent (and per action type) and
today's usage. The rules they enforce are in ``limits.py``; placement charges proposals
against them in ``ledger.py``."""

from typing import Any

from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.catalog import action_types
from backend.controls.budgets.limits import usage
from backend.core.errors import ApiError
from models.agents import Agent
from models.audit import AuditAction
from models.common import utcnow
from models.policies import Budget, BudgetSpec


def _public(row: Budget) -> dict[str, Any]:
    return {
        "action_type": row.action_type or None,
        "allowed_action_types": row.allowed_action_types,
        "max_tool_calls_per_task": row.max_tool_calls_per_task,
        "max_tokens_per_task": row.max_tokens_per_task,
        "max_proposals_per_day": row.max_proposals_per_day,
        "max_cost_usd_per_day": row.max_cost_usd_per_day,
        "hard": row.hard,
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
