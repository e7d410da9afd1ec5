"""Budgets: usage limits per agent. Until the budgets issue lands, nothing is limited."""

from typing import Any

from sqlmodel import Session

from models.action_types import ActionType
from models.agents import Agent


def check_and_charge(
    session: Session, agent: Agent, action_type: ActionType, context: dict[str, Any]
) -> list[str]:
    """Flags for the proposal (e.g. ``budget_exceeded``); may trip the agent's breaker."""
    return []
