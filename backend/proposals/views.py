"""Wire views of stored rows: the one place that decides what a proposal looks like.

Every view of a payload goes through here with ``mask_schema``: the action type's schema
when the reader may not see ``x-pii`` fields in clear (``backend/catalog/pii.py``), None
when they may.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backend.catalog import pii
from backend.core.canonical import sha256_hex
from backend.proposals import quorum
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


def decision_public(d: Decision, mask_schema: dict[str, Any] | None = None) -> DecisionPublic:
    view = DecisionPublic.model_validate(d, from_attributes=True)
    if mask_schema is not None and d.edited_payload is not None:
        view.edited_payload = pii.masked(d.edited_payload, mask_schema)
    return view


def proposal_summary(
    p: Proposal,
    agent_name: str | None = None,
    now: datetime | None = None,
    *,
    approvals_required: int = 1,
    mask_schema: dict[str, Any] | None = None,
    effective_payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return ProposalSummary(
        id=p.id,
        agent_id=p.agent_id,
        agent_name=agent_name,
        action_type=p.action_type,
        summary=p.summary,
        payload=pii.masked(p.payload, mask_schema) or {},
        status=p.status,
        mode=p.mode,
        flags=p.flags,
        created_at=p.created_at,
        expires_at=p.expires_at,
        claim=_claim(p, now),
        approvals=p.approval_count,
        approvals_required=approvals_required,
        escalated=p.escalated_at is not None,
        assigned_to=p.assigned_to,
        payload_sha256=sha256_hex(p.payload if effective_payload is None else effective_payload),
    ).model_dump(mode="json")


def proposal_public(
    p: Proposal,
    decisions: Sequence[Decision] | None = None,
    execution: Execution | None = None,
    agent_name: str | None = None,
    now: datetime | None = None,
    *,
    approvals_required: int = 1,
    mask_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    decisions = list(decisions or [])
    return ProposalPublic(
        id=p.id,
        agent_id=p.agent_id,
        agent_name=agent_name,
        action_type=p.action_type,
        action_type_version=p.action_type_version,
        summary=p.summary,
        payload=pii.masked(p.payload, mask_schema) or {},
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
        decisions=[decision_public(d, mask_schema) for d in decisions],
        execution=ExecutionPublic.model_validate(execution, from_attributes=True) if execution else None,
        payload_sha256=sha256_hex(quorum.effective_payload(p, decisions)),
        approvals=[{"reviewer": d.reviewer_sub, "at": d.created_at} for d in quorum.counted(p, decisions)],
        approvals_required=approvals_required,
        escalated=p.escalated_at is not None,
        assigned_to=p.assigned_to,
    ).model_dump(mode="json")
