"""Everything that moves a proposal after it is placed: decide, claim, cancel, expire, execute.

Every transition is a conditional UPDATE on the status the proposal must be in, so exactly
one of any number of concurrent requests (threads or replicas) wins; the others get 409.
"""

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.auth.oidc import User
from backend.catalog import action_types
from backend.controls import kill_switch as system
from backend.controls.policy import gate
from backend.core.db import read_session, transaction
from backend.core.errors import ApiError
from backend.core.settings import get_settings
from backend.proposals import waiting as notify
from backend.proposals.placing import load, load_for_agent
from backend.proposals.views import proposal_public
from models.agents import Agent, Dial
from models.common import utcnow
from models.proposals import (
    Decision,
    DecisionCreate,
    DecisionPublic,
    DecisionState,
    Execution,
    ExecutionReport,
    Proposal,
    Status,
    Verdict,
)

_T = TypeVar("_T")


def transition(
    session: Session, proposal_id: str, from_status: Status, to_status: Status, **values: Any
) -> bool:
    """Move one proposal from one status to another; False if someone else moved it first."""
    result = session.execute(
        update(Proposal)
        .where(Proposal.id == proposal_id, Proposal.status == from_status.value)  # type: ignore[arg-type]
        .values(status=to_status.value, updated_at=utcnow(), **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _already(proposal: Proposal) -> ApiError:
    return ApiError(
        409,
        "already_decided",
        f"This proposal is already {proposal.status}.",
        extra={"status": proposal.status},
    )


def expire_if_due(session: Session, proposal: Proposal) -> bool:
    """Expire a pending proposal past its deadline (the check on read)."""
    now = utcnow()
    if proposal.status != Status.pending or proposal.expires_at > now:
        return False
    if not transition(
        session,
        proposal.id,
        Status.pending,
        Status.expired,
        decided_at=now,
        claimed_by=None,
        claimed_by_name=None,
        claim_expires_at=None,
    ):
        return False
    audit.record(
        session, "system", "proposal.expired", f"proposal:{proposal.id}", {"expires_at": proposal.expires_at}
    )
    notify.proposal_changed(session, proposal.id)
    session.refresh(proposal)
    return True


def full_view(session: Session, proposal: Proposal) -> dict[str, Any]:
    decisions = list(
        session.exec(
            select(Decision).where(Decision.proposal_id == proposal.id).order_by(Decision.created_at)  # type: ignore[arg-type]
        ).all()
    )
    execution = session.get(Execution, proposal.id)
    agent = session.get(Agent, proposal.agent_id)
    return proposal_public(
        proposal,
        decisions=decisions,
        execution=execution,
        agent_name=agent.name if agent else None,
        now=utcnow(),
    )


def _is_overdue(proposal: Proposal) -> bool:
    return proposal.status == Status.pending and proposal.expires_at <= utcnow()


def _read(proposal_id: str, agent_id: str | None, render: Callable[[Session, Proposal], _T]) -> _T:
    """Read without taking SQLite's write lock; write only when the proposal must expire first."""
    with read_session() as session:
        proposal = load_for_agent(session, agent_id, proposal_id) if agent_id else load(session, proposal_id)
        if not _is_overdue(proposal):
            return render(session, proposal)
    with transaction() as session:
        proposal = load(session, proposal_id)
        expire_if_due(session, proposal)
        return render(session, proposal)


def get_view(proposal_id: str, agent_id: str | None = None) -> dict[str, Any]:
    return _read(proposal_id, agent_id, full_view)


def decision_state(session: Session, proposal: Proposal) -> dict[str, Any]:
    decision = session.exec(
        select(Decision).where(Decision.proposal_id == proposal.id).order_by(Decision.created_at.desc())  # type: ignore[union-attr]
    ).first()
    payload = proposal.payload
    if decision is not None and decision.verdict == Verdict.approve and decision.edited_payload:
        payload = decision.edited_payload
    return DecisionState(
        proposal_id=proposal.id,
        status=proposal.status,
        mode=proposal.mode,
        decided=proposal.status != Status.pending,
        decision=DecisionPublic.model_validate(decision, from_attributes=True) if decision else None,
        payload=payload,
        expires_at=proposal.expires_at,
    ).model_dump(mode="json")


def read_decision_state(agent_id: str, proposal_id: str) -> tuple[dict[str, Any], bool]:
    """The state a long-poller sees, and whether it is final for waiting purposes."""
    return _read(proposal_id, agent_id, lambda s, p: (decision_state(s, p), p.status != Status.pending))


def decide(proposal_id: str, user: User, body: DecisionCreate) -> dict[str, Any]:
    with transaction() as session:
        proposal = load(session, proposal_id)
        if expire_if_due(session, proposal):
            session.commit()
            raise ApiError(409, "proposal_expired", "This proposal expired before a decision.")
        if proposal.status != Status.pending:
            raise _already(proposal)
        action_type = action_types.require(session, proposal.action_type)
        agent = session.get(Agent, proposal.agent_id)
        assert agent is not None
        if body.verdict == Verdict.reject:
            _check_reasons(action_type, body)
            if body.edited_payload is not None:
                raise ApiError(
                    422,
                    "edit_on_reject",
                    "Only an approval can carry an edited payload.",
                    param="edited_payload",
                )
            allowed_version, policy_ids = None, []
        else:
            if agent.suspended:
                raise ApiError(
                    409, "agent_suspended", "The agent is suspended; its proposals cannot be approved."
                )
            if system.kill_switch_engaged(session):
                raise ApiError(
                    409, "kill_switch_engaged", "The global kill switch is engaged; nothing can be approved."
                )
            if body.reason_codes:
                _check_reasons(action_type, body)
            if body.edited_payload is not None:
                action_types.validate_payload(action_type, body.edited_payload, field="edited_payload")
            final_payload = body.edited_payload or proposal.payload
            verdict = gate.judge_approval(session, user, agent, action_type, final_payload, proposal.context)
            if not verdict.allowed:
                audit.record(
                    session,
                    user.actor,
                    "decision.refused",
                    f"proposal:{proposal.id}",
                    {
                        "code": "insufficient_privilege",
                        "policy_ids": verdict.policy_ids,
                        "policy_version": verdict.version,
                        "groups": list(user.groups),
                    },
                )
                session.commit()
                raise ApiError(
                    403,
                    "insufficient_privilege",
                    "Policy does not let you approve this action.",
                    extra={"policy_ids": verdict.policy_ids},
                )
            allowed_version, policy_ids = verdict.version, verdict.policy_ids
        now = utcnow()
        new_status = Status.approved if body.verdict == Verdict.approve else Status.rejected
        if not transition(
            session,
            proposal.id,
            Status.pending,
            new_status,
            decided_at=now,
            claimed_by=None,
            claimed_by_name=None,
            claim_expires_at=None,
        ):
            session.rollback()
            raise _already(load(session, proposal_id))
        decision = Decision(
            proposal_id=proposal.id,
            verdict=body.verdict.value,
            decided_by="user",
            reviewer_sub=user.sub,
            reviewer_email=user.email,
            reviewer_name=user.name,
            reviewer_groups=list(user.groups),
            reason_codes=body.reason_codes,
            comment=body.comment,
            edited_payload=body.edited_payload,
            policy_version=allowed_version,
            policy_ids=policy_ids,
            created_at=now,
        )
        session.add(decision)
        audit.record(
            session,
            user.actor,
            "proposal.decided",
            f"proposal:{proposal.id}",
            {
                "verdict": decision.verdict,
                "reason_codes": decision.reason_codes,
                "comment": decision.comment,
                "edited": body.edited_payload is not None,
                "edited_payload": body.edited_payload,
                "policy_version": allowed_version,
                "policy_ids": policy_ids,
                "reviewer": {"sub": user.sub, "email": user.email, "groups": list(user.groups)},
            },
        )
        notify.proposal_changed(session, proposal.id)
        session.flush()
        return DecisionPublic.model_validate(decision, from_attributes=True).model_dump(mode="json")


def _check_reasons(action_type: Any, body: DecisionCreate) -> None:
    if body.verdict == Verdict.reject and not body.reason_codes:
        raise ApiError(
            422, "reason_required", "A rejection needs at least one reason code.", param="reason_codes"
        )
    valid = action_types.reason_code_set(action_type)
    unknown = [c for c in body.reason_codes if c not in valid]
    if valid and unknown:
        raise ApiError(
            422,
            "unknown_reason_code",
            f"Unknown reason code(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}.",
            param="reason_codes",
            extra={"valid": sorted(valid)},
        )
    if "other" in body.reason_codes and not body.comment.strip():
        raise ApiError(422, "comment_required", "Reason 'other' needs a comment.", param="comment")


def claim(proposal_id: str, user: User) -> dict[str, Any]:
    with transaction() as session:
        proposal = load(session, proposal_id)
        if expire_if_due(session, proposal):
            session.commit()
            raise ApiError(409, "proposal_expired", "This proposal has expired.")
        if proposal.status != Status.pending:
            raise _already(proposal)
        now = utcnow()
        until = now + timedelta(seconds=get_settings().claim_seconds)
        result = session.execute(
            update(Proposal)
            .where(
                Proposal.id == proposal.id,
                Proposal.status == Status.pending.value,  # type: ignore[arg-type]
                or_(
                    Proposal.claimed_by.is_(None),
                    Proposal.claimed_by == user.sub,  # type: ignore[union-attr]
                    Proposal.claim_expires_at <= now,
                ),  # type: ignore[operator]
            )
            .values(
                claimed_by=user.sub,
                claimed_by_name=user.name or user.email or user.sub,
                claim_expires_at=until,
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            session.rollback()
            current = load(session, proposal_id)
            raise ApiError(
                409,
                "claimed",
                f"{current.claimed_by_name or current.claimed_by} is reviewing this.",
                extra={"claimed_by": current.claimed_by, "claim_expires_at": current.claim_expires_at},
            )
        audit.record(session, user.actor, "proposal.claimed", f"proposal:{proposal.id}", {"until": until})
        return {"by": user.sub, "name": user.name or user.email or user.sub, "expires_at": until}


def release(proposal_id: str, user: User, is_admin: bool) -> None:
    with transaction() as session:
        proposal = load(session, proposal_id)
        if proposal.claimed_by is None:
            return
        if proposal.claimed_by != user.sub and not is_admin:
            raise ApiError(403, "not_claim_holder", "Only the reviewer who holds the claim can release it.")
        proposal.claimed_by = proposal.claimed_by_name = proposal.claim_expires_at = None
        session.add(proposal)
        audit.record(session, user.actor, "proposal.released", f"proposal:{proposal.id}", {})


def cancel(proposal_id: str, agent_id: str) -> dict[str, Any]:
    with transaction() as session:
        proposal = load_for_agent(session, agent_id, proposal_id)
        expire_if_due(session, proposal)
        if proposal.status == Status.cancelled:
            return full_view(session, proposal)
        if not transition(
            session,
            proposal.id,
            Status.pending,
            Status.cancelled,
            decided_at=utcnow(),
            claimed_by=None,
            claimed_by_name=None,
            claim_expires_at=None,
        ):
            raise _already(load(session, proposal_id))
        audit.record(session, f"agent:{agent_id}", "proposal.cancelled", f"proposal:{proposal.id}", {})
        notify.proposal_changed(session, proposal.id)
        session.refresh(proposal)
        return full_view(session, proposal)


def report_execution(proposal_id: str, agent_id: str, body: ExecutionReport) -> tuple[dict[str, Any], bool]:
    """Record the outcome once. Returns (execution, replayed)."""
    request_hash = hashlib.sha256(
        orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    try:
        with transaction() as session:
            proposal = load_for_agent(session, agent_id, proposal_id)
            existing = session.get(Execution, proposal.id)
            if existing is not None:
                return _replay(existing, request_hash), True
            if proposal.status != Status.approved:
                raise ApiError(
                    409,
                    "not_approved",
                    f"Only an approved proposal can be executed; this one is {proposal.status}.",
                    extra={"status": proposal.status},
                )
            if proposal.mode == Dial.draft:
                raise ApiError(
                    409,
                    "draft_not_executable",
                    "A draft-mode proposal is applied by its executor, never by the agent.",
                )
            execution = Execution(
                proposal_id=proposal.id,
                status=body.status,
                result=body.result,
                error=body.error,
                request_hash=request_hash,
                reported_by=f"agent:{agent_id}",
            )
            session.add(execution)
            session.flush()
            final = Status.executed if body.status == "succeeded" else Status.failed
            if not transition(session, proposal.id, Status.approved, final):
                raise _already(load(session, proposal_id))
            audit.record(
                session,
                f"agent:{agent_id}",
                "proposal.executed",
                f"proposal:{proposal.id}",
                {
                    "status": body.status,
                    "error": body.error,
                    "result_sha256": hashlib.sha256(orjson.dumps(body.result)).hexdigest(),
                },
            )
            notify.proposal_changed(session, proposal.id)
            return _public_execution(execution), False
    except IntegrityError:
        with transaction() as session:
            existing = session.get(Execution, proposal_id)
            assert existing is not None
            return _replay(existing, request_hash), True


def _public_execution(execution: Execution) -> dict[str, Any]:
    return {
        "status": execution.status,
        "result": execution.result,
        "error": execution.error,
        "reported_by": execution.reported_by,
        "created_at": execution.created_at,
    }


def _replay(existing: Execution, request_hash: str) -> dict[str, Any]:
    if existing.request_hash != request_hash:
        raise ApiError(
            409, "execution_already_reported", "A different outcome was already reported for this proposal."
        )
    return _public_execution(existing)
