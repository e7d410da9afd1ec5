"""The limits a proposal is checked against: budgets and the two guards.

Each proposal is charged against its agent's usage for the UTC day and checked against
the agent's budgets (agent-wide, and the ones for its action type) and two guards: a
tool-call spike (more than 3x the agent's recent median) and repeated policy denials
(3 in 10 minutes). Crossing any trips the agent's breaker (``backend/controls/breaker.py``),
which caps its dials at ``draft`` until an admin resets it; the proposal is still accepted
and flagged. Placement applies these rules in ``ledger.py``.
"""

import statistics
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from models.policies import AgentUsage, Budget

TOOL_CALL_WINDOW = 50
TOOL_CALL_MIN_SAMPLES = 10
TOOL_CALL_SPIKE_FACTOR = 3
DENIAL_WINDOW = timedelta(minutes=10)
DENIAL_LIMIT = 3


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
