"""Separation of duties: who may not approve a proposal, whatever policy says.

The agent's owner, whoever created the agent or granted it the action type, and anyone
who already approved this proposal (an approval an edit has since set aside included)
are refused, unless the action type turns the rule off (``separation_of_duties``).
"""

from collections.abc import Sequence

from sqlalchemy import bindparam
from sqlmodel import Session, select

from backend.auth.oidc import User
from models.action_types import ActionType
from models.agents import Agent, Grant
from models.proposals import Decision, Verdict

_GRANTED_BY = select(Grant.granted_by).where(
    Grant.agent_id == bindparam("agent_id"),  # type: ignore[arg-type]
    Grant.action_type == bindparam("action_type"),  # type: ignore[arg-type]
)


_MEMO = "signoff_grants_given_by"


def _granted_by(session: Session, agent_id: str, action_type: str) -> str | None:
    """Who granted the agent the action type, read once per transaction (a group commit
    decides many proposals of one agent in one)."""
    memo: dict[tuple[str, str], str | None] = session.info.setdefault(_MEMO, {})
    key = (agent_id, action_type)
    if key not in memo:
        memo[key] = session.scalars(_GRANTED_BY, {"agent_id": agent_id, "action_type": action_type}).first()
    return memo[key]


def _is(user: User, who: str | None) -> bool:
    if not who:
        return False
    return who in {user.sub, user.actor} or (user.email is not None and who == user.email)


def refusal(
    session: Session, user: User, agent: Agent, action_type: ActionType, decisions: Sequence[Decision]
) -> str | None:
    """Why ``user`` may not approve, or None. The reasons are stable names, audited."""
    if not action_type.separation_of_duties:
        return None
    if _is(user, agent.owner):
        return "agent_owner"
    if _is(user, agent.created_by):
        return "agent_creator"
    granted_by = _granted_by(session, agent.id, action_type.name)
    if _is(user, granted_by):
        return "grant_giver"
    if any(d.verdict == Verdict.approve and d.reviewer_sub == user.sub for d in decisions):
        return "already_approved"
    return None


MESSAGES = {
    "agent_owner": "You own this agent, so you may not approve its proposals.",
    "agent_creator": "You created this agent, so you may not approve its proposals.",
    "grant_giver": "You granted this agent the action type, so you may not approve its proposals.",
    "already_approved": "You approved an earlier version of this proposal; another reviewer must approve.",
}
