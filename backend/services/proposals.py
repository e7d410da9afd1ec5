"""Placing a proposal: admission, validation, idempotency, gate, effective mode.

The order follows DESIGN.md section 2. Refusals that store nothing but an audit event
commit that event on their own and then raise.
"""

import hashlib
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.db import transaction
from backend.errors import ApiError, not_found
from backend.services import action_types, audit, budgets, eval_runs, gate, notify, system
from backend.services.idempotency import IdempotencyOutcome, claim_key, store_response
from backend.services.views import proposal_public
from backend.settings import get_settings
from models.action_types import ActionType
from models.agents import Agent, Dial, Grant
from models.common import utcnow
from models.proposals import Decision, Proposal, ProposalCreate, Status, Verdict

MODE_STATUS = {
    Dial.observe: Status.observed,
    Dial.draft: Status.pending,
    Dial.approve: Status.pending,
    Dial.execute: Status.approved,
}


def body_hash(raw: bytes) -> str:
    """Fingerprint of a request body, insensitive to key order and whitespace."""
    try:
        canonical = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def effective_mode(dial: Dial, breaker_tripped: bool, outcome: gate.Outcome) -> Dial | None:
    """The lowest of the dial, the breaker cap and the policy outcome; None means denied."""
    if outcome == "deny":
        return None
    caps = [dial, Dial.execute if outcome == "execute" else Dial.approve]
    if breaker_tripped:
        caps.append(Dial.draft)
    return min(caps, key=lambda d: d.rank)


def _admission_refusal(
    session: Session, agent: Agent, body: ProposalCreate
) -> tuple[ApiError | None, ActionType | None, Grant | None]:
    actor = f"agent:{agent.id}"
    if system.kill_switch_engaged(session):
        audit.record(
            session,
            actor,
            "proposal.refused",
            f"agent:{agent.id}",
            {"code": "kill_switch_engaged", "action_type": body.action_type},
        )
        return ApiError(403, "kill_switch_engaged", "The global kill switch is engaged."), None, None
    if agent.suspended:
        audit.record(
            session,
            actor,
            "proposal.refused",
            f"agent:{agent.id}",
            {"code": "agent_suspended", "action_type": body.action_type},
        )
        return ApiError(403, "agent_suspended", "This agent is suspended."), None, None
    action_type = action_types.get(session, body.action_type)
    if action_type is None:
        return (
            ApiError(
                422, "unknown_action_type", f"No action type named {body.action_type!r}.", param="action_type"
            ),
            None,
            None,
        )
    grant = session.exec(
        select(Grant).where(Grant.agent_id == agent.id, Grant.action_type == body.action_type)
    ).first()
    if grant is None:
        audit.record(
            session,
            actor,
            "proposal.refused",
            f"agent:{agent.id}",
            {"code": "action_not_allowed", "action_type": body.action_type},
        )
        return (
            ApiError(
                403,
                "action_not_allowed",
                f"This agent is not granted the action type {body.action_type!r}.",
                param="action_type",
            ),
            None,
            None,
        )
    return None, action_type, grant


def create(
    agent_id: str, body: ProposalCreate, request_hash: str, idempotency_key: str | None
) -> tuple[int, dict[str, Any], bool]:
    """Place one proposal. Returns (status code, response body, replayed)."""
    for _attempt in range(3):
        try:
            return _create_once(agent_id, body, request_hash, idempotency_key)
        except IntegrityError:
            # A concurrent request with the same key won the insert; replay its answer.
            if idempotency_key is None:
                raise
    raise ApiError(409, "idempotency_conflict", "Concurrent requests with this key; retry.")


def _create_once(
    agent_id: str, body: ProposalCreate, request_hash: str, idempotency_key: str | None
) -> tuple[int, dict[str, Any], bool]:
    refusal: ApiError | None = None
    with transaction() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        refusal, action_type, grant = _admission_refusal(session, agent, body)
        if refusal is None:
            assert action_type is not None and grant is not None
            action_types.validate_payload(action_type, body.payload)
            if idempotency_key is not None:
                outcome = claim_key(session, agent.id, idempotency_key, request_hash)
                if isinstance(outcome, IdempotencyOutcome):
                    return outcome.status_code, outcome.body, True
            result = _place(session, agent, action_type, grant, body, idempotency_key)
            if idempotency_key is not None:
                store_response(session, agent.id, idempotency_key, 201, result)
            return 201, result, False
    assert refusal is not None
    raise refusal


def _place(
    session: Session,
    agent: Agent,
    action_type: ActionType,
    grant: Grant,
    body: ProposalCreate,
    idempotency_key: str | None,
) -> dict[str, Any]:
    context = body.context.model_dump(exclude_none=True)
    flags = budgets.check_and_charge(session, agent, action_type, context)
    verdict = gate.judge_proposal(session, agent, action_type, body.payload, context)
    mode = effective_mode(Dial(grant.dial), agent.breaker_tripped_at is not None, verdict.outcome)
    mode, eval_tag = eval_runs.cap_for_run(session, agent.id, context, mode, flags)
    now = utcnow()
    expires_in = body.expires_in_seconds or action_type.default_expiry_seconds
    proposal = Proposal(
        agent_id=agent.id,
        action_type=action_type.name,
        action_type_version=action_type.version,
        summary=body.summary,
        payload=body.payload,
        evidence=[e.model_dump(exclude_none=True) for e in body.evidence],
        context=context,
        status=(MODE_STATUS[mode] if mode else Status.rejected).value,
        mode=(mode or Dial(grant.dial)).value,
        dial=grant.dial,
        policy_version=verdict.version,
        policy_outcome=verdict.outcome,
        policy_ids=verdict.policy_ids,
        flags=flags,
        idempotency_key=idempotency_key,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=expires_in),
    )
    decisions: list[Decision] = []
    if mode is None or mode == Dial.execute:
        proposal.decided_at = now
        decisions.append(
            Decision(
                proposal_id=proposal.id,
                verdict=(Verdict.reject if mode is None else Verdict.approve).value,
                decided_by="policy",
                reason_codes=["policy_denied"] if mode is None else [],
                policy_version=verdict.version,
                policy_ids=verdict.policy_ids,
                created_at=now,
            )
        )
    session.add(proposal)
    session.add_all(decisions)
    session.flush()
    eval_runs.link(session, proposal.id, eval_tag)
    actor = f"agent:{agent.id}"
    subject = f"proposal:{proposal.id}"
    audit.record(
        session,
        actor,
        "proposal.created",
        subject,
        {
            "action_type": proposal.action_type,
            "status": proposal.status,
            "mode": proposal.mode,
            "dial": proposal.dial,
            "summary": proposal.summary,
            "flags": flags,
            "payload_sha256": hashlib.sha256(
                orjson.dumps(body.payload, option=orjson.OPT_SORT_KEYS)
            ).hexdigest(),
            "evidence": [
                {"kind": e.kind.value, "title": e.title, "uri": e.uri, "sha256": e.sha256}
                for e in body.evidence
            ],
            "context": context,
        },
    )
    audit.record(
        session,
        "system",
        "policy.evaluated",
        subject,
        {
            "version": verdict.version,
            "outcome": verdict.outcome,
            "policy_ids": verdict.policy_ids,
            "effective_mode": mode.value if mode else None,
        },
    )
    if decisions:
        audit.record(
            session,
            "system",
            "proposal.decided",
            subject,
            {
                "verdict": decisions[0].verdict,
                "decided_by": "policy",
                "reason_codes": decisions[0].reason_codes,
                "policy_version": verdict.version,
            },
        )
    return proposal_public(proposal, decisions=decisions, agent_name=agent.name)


def load_for_agent(session: Session, agent_id: str, proposal_id: str) -> Proposal:
    """An agent sees only its own proposals; another's is as good as missing."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None or proposal.agent_id != agent_id:
        raise not_found("proposal", proposal_id)
    return proposal


def load(session: Session, proposal_id: str) -> Proposal:
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise not_found("proposal", proposal_id)
    return proposal


def default_expiry() -> timedelta:
    return timedelta(seconds=get_settings().default_expiry_seconds)


def mark_changed(session: Session, proposal: Proposal) -> None:
    notify.proposal_changed(session, proposal.id)
