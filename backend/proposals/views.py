"""Wire views of stored rows: the one place that decides what a proposal looks like."""

from datetime import datetime
from typing import Any

from models.proposals import (
    Decision,
    DecisionPublic,
    Execution,
    ExecutionPublic,
    Proposal,
    ProposalPublic,
    ProposalSummary,
)


def _claim(p: Proposal, now: datetime | None) -> dict[str, Any] | None:
    if p.claimed_by is None or p.claim_expires_at is None:
        return None
    if now is not None and p.claim_expires_at <= now:
        return None
    return {"by": p.claimed_by, "name": p.claimed_by_name, "expires_at": p.claim_expires_at}


def proposal_summary(
    p: Proposal, agent_name: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    return ProposalSummary(
        id=p.id,
        agent_id=p.agent_id,
        agent_name=agent_name,
        action_type=p.action_type,
        summary=p.summary,
        payload=p.payload,
        status=p.status,
        mode=p.mode,
        flags=p.flags,
        created_at=p.created_at,
        expires_at=p.expires_at,
        claim=_claim(p, now),
    ).model_dump(mode="json")


def proposal_public(
    p: Proposal,
    decisions: list[Decision] | None = None,
    execution: Execution | None = None,
    agent_name: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    return ProposalPublic(
        id=p.id,
        agent_id=p.agent_id,
        agent_name=agent_name,
        action_type=p.action_type,
        action_type_version=p.action_type_version,
        summary=p.summary,
        payload=p.payload,
        evidence=p.evidence,
        context=p.context,
        status=p.status,
        mode=p.mode,
        dial=p.dial,
        flags=p.flags,
        policy={"version": p.policy_version, "outcome": p.policy_outcome, "policy_ids": p.policy_ids},
        created_at=p.created_at,
        updated_at=p.updated_at,
        expires_at=p.expires_at,
        decided_at=p.decided_at,
        claim=_claim(p, now),
        decisions=[DecisionPublic.model_validate(d, from_attributes=True) for d in decisions or []],
        execution=ExecutionPublic.model_validate(execution, from_attributes=True) if execution else None,
    ).model_dump(mode="json")
