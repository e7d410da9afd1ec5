"""The policy gate's contract with the rest of the backend.

Until the Cedar engine lands, every proposal is "propose" (a human decides) and an
approver needs the action type's ``approver_role``; the Cedar engine replaces the two
functions below without changing their signatures.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlmodel import Session

from backend.auth.oidc import User
from models.action_types import ActionType
from models.agents import Agent

Outcome = Literal["deny", "propose", "execute"]


@dataclass(frozen=True)
class GateOutcome:
    version: int | None
    outcome: Outcome
    policy_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApprovalOutcome:
    allowed: bool
    version: int | None
    policy_ids: list[str] = field(default_factory=list)


def judge_proposal(
    session: Session,
    agent: Agent,
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
) -> GateOutcome:
    return GateOutcome(version=None, outcome="propose")


def judge_approval(
    session: Session,
    user: User,
    agent: Agent,
    action_type: ActionType,
    payload: dict[str, Any],
    context: dict[str, Any],
) -> ApprovalOutcome:
    role = action_type.approver_role
    if role is None or user.has(role):
        return ApprovalOutcome(allowed=True, version=None, policy_ids=["approver_role"])
    return ApprovalOutcome(allowed=False, version=None, policy_ids=["approver_role"])
