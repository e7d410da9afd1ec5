"""One proposal's whole story, in order: what the agent sent, how policy judged it, who
decided, what was executed, which webhooks went out; the screen to read at 2 a.m.

The audit trail is the backbone (every state change wrote one event, in order). Each
step is filled in from the rows the trail only summarises: the proposal's evidence and
context on ``proposal.created``, the decision row (reviewer, groups, reason codes, the
edited payload) on ``proposal.decided``, the execution's result on ``proposal.executed``,
and one item per webhook delivery with its attempts. Every item carries the proposal's
trace id (the trace that placed it, else the agent's ``context.trace_id``). A reader
without the unmask right sees the action type's ``x-pii`` fields masked in every payload
the story carries (``backend/catalog/pii.py``); an agent reads its own in clear.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from backend.catalog import pii
from backend.core.db import read_session
from backend.proposals.lookup import load, load_for_agent
from models.action_types import ActionType
from models.audit import AuditAction, AuditEvent
from models.proposals import Decision, Execution, Proposal
from models.webhooks import WebhookDelivery


def trace_id_of(proposal: Proposal) -> str | None:
    """The trace that placed the proposal (its traceparent), else the one its agent named."""
    if proposal.traceparent:
        parts = proposal.traceparent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            return parts[1]
    named = (proposal.context or {}).get("trace_id")
    return str(named) if named else None


def get_timeline(proposal_id: str, agent_id: str | None = None, unmask: bool = False) -> dict[str, Any]:
    """``{"items": [...], "trace_id": ...}``; an agent reads only its own proposals, in clear;
    anyone else sees ``x-pii`` fields masked unless ``unmask``."""
    with read_session() as session:
        proposal = load_for_agent(session, agent_id, proposal_id) if agent_id else load(session, proposal_id)
        items = timeline(session, proposal)
        if agent_id is None and not unmask:
            action_type = session.get(ActionType, proposal.action_type)
            items = _masked(items, action_type.payload_schema if action_type else None)
        return {"items": items, "trace_id": trace_id_of(proposal)}


def _masked(items: list[dict[str, Any]], schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every payload an item carries masked: its own (``payload``, ``edited_payload``) and
    that of the decision attached to it."""
    if not schema or not pii.pii_paths(schema):
        return items
    out = []
    for item in items:
        data = pii.masked_event_data(item["data"], schema)
        if isinstance(data.get("decision"), dict):
            data = {**data, "decision": pii.masked_event_data(data["decision"], schema)}
        out.append({**item, "data": data})
    return out


def timeline(session: Session, proposal: Proposal) -> list[dict[str, Any]]:
    trace_id = trace_id_of(proposal)
    subject = f"proposal:{proposal.id}"
    events = session.execute(
        select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.seq)  # type: ignore[arg-type]
    ).scalars()
    by_proposal = Decision.proposal_id == proposal.id
    in_order = select(Decision).where(by_proposal).order_by(Decision.created_at)  # type: ignore[arg-type]
    decisions = list(session.execute(in_order).scalars())
    execution = session.get(Execution, proposal.id)
    deliveries = session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.proposal_id == proposal.id)  # type: ignore[arg-type]
        .order_by(WebhookDelivery.created_at)
    ).scalars()

    items: list[dict[str, Any]] = []
    for event in events:
        data = dict(event.data)
        if event.action == AuditAction.PROPOSAL_CREATED:
            data.update(evidence=proposal.evidence, context=proposal.context, payload=proposal.payload)
        elif event.action == AuditAction.PROPOSAL_DECIDED:
            decision = _take_decision(decisions, event.actor)
            if decision is not None:
                data["decision"] = _decision(decision)
        elif event.action == AuditAction.PROPOSAL_EXECUTED and execution is not None:
            data["execution"] = {
                "status": execution.status,
                "result": execution.result,
                "error": execution.error,
                "reported_by": execution.reported_by,
            }
        items.append(_item("audit", event.action, event.at, event.actor, data, trace_id, event.id))
    # Decisions no status change announced (an approval short of the quorum).
    for decision in decisions:
        actor = f"user:{decision.reviewer_sub}" if decision.reviewer_sub else "system"
        data = _decision(decision)
        at = decision.created_at
        items.append(_item("decision", "decision.recorded", at, actor, data, trace_id, decision.id))
    for delivery in deliveries:
        data = {
            "event_type": delivery.event_type,
            "endpoint_id": delivery.endpoint_id,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code,
            "last_error": delivery.last_error,
            "delivered_at": delivery.delivered_at,
        }
        at = delivery.created_at
        items.append(_item("webhook", "webhook.delivery", at, "system", data, trace_id, delivery.id))
    # Stable: the trail's own order, deliveries after the event that queued them.
    order = {"audit": 0, "decision": 1, "webhook": 2}
    return [
        item
        for _, item in sorted(
            enumerate(items), key=lambda pair: (_utc(pair[1]["at"]), order[pair[1]["kind"]], pair[0])
        )
    ]


def _take_decision(decisions: list[Decision], actor: str) -> Decision | None:
    """The decision row behind a ``proposal.decided`` event, removed from ``decisions``."""
    for i in range(len(decisions) - 1, -1, -1):
        d = decisions[i]
        by = f"user:{d.reviewer_sub}" if d.reviewer_sub else "system"
        if by == actor or (d.decided_by == "policy" and actor == "system"):
            return decisions.pop(i)
    return None


def _decision(d: Decision) -> dict[str, Any]:
    return {
        "verdict": d.verdict,
        "decided_by": d.decided_by,
        "reviewer": (
            {
                "sub": d.reviewer_sub,
                "email": d.reviewer_email,
                "name": d.reviewer_name,
                "groups": d.reviewer_groups,
            }
            if d.reviewer_sub
            else None
        ),
        "reason_codes": d.reason_codes,
        "comment": d.comment,
        "edited_payload": d.edited_payload,
        "policy_version": d.policy_version,
        "policy_ids": d.policy_ids,
    }


def _item(
    kind: str, event: str, at: datetime, actor: str, data: dict[str, Any], trace_id: str | None, ident: str
) -> dict[str, Any]:
    return {
        "id": ident,
        "kind": kind,
        "event": str(event),
        "at": at,
        "actor": actor,
        "data": data,
        "trace_id": trace_id,
    }


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
