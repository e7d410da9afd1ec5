"""A reviewer's decision on a pending proposal: approve (perhaps edited) or reject.

The rules, in the order they are checked: the proposal must still be pending (one past
its deadline expires instead) and not claimed by another reviewer (409 ``claimed``); the
reviewer must have seen the current payload (``seen_payload_sha256``, 409 ``stale_view``);
a rejection needs known reason codes. An approval needs the agent to be allowed to act
(``backend/controls/admission.py``), a reviewer who has not approved already (409
``already_approved``) and whom separation of duties does not exclude
(``backend/proposals/duties.py``, 403), an edit within the action type's limits
(``backend/catalog/edits.py``) that passes its schema, and a policy that lets this reviewer
approve (``backend/controls/policy/gate.py``). An approval short of the quorum
(``backend/proposals/quorum.py``) is recorded and the proposal stays ``pending``; the last
one, or any rejection, leaves ``pending`` through ``backend/proposals/transitions.py``,
where exactly one of concurrent deciders wins. The approval that ends a proposal (the Nth)
is issued a signed receipt (``backend/proposals/receipts.py``) naming every approver whose
approval counts, over the effective payload.
"""

from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from backend.audit import chain as audit
from backend.auth.oidc import User
from backend.catalog import action_types, edits, pii
from backend.controls import admission
from backend.controls.policy import gate
from backend.core.canonical import sha256_hex
from backend.core.db import WritesStand, transaction
from backend.core.errors import ApiError
from backend.observability import tracing
from backend.proposals import duties, group_commit, quorum, receipts, transitions
from backend.proposals.lookup import load
from backend.proposals.reading import decisions_of, still_pending
from models.action_types import ActionType
from models.agents import Agent
from models.audit import AuditAction
from models.common import new_id, utcnow
from models.proposals import Decision, DecisionCreate, DecisionPublic, Proposal, Status, Verdict

_INSERT = insert(Decision.__table__)  # type: ignore[attr-defined]

# A decision that lost a race with another approval on the same proposal is tried again
# (it re-reads the proposal, in the same transaction: on PostgreSQL each statement sees
# what others committed); exactly-once comes from the conditional UPDATEs, not this.
_ATTEMPTS = 5


class _Raced(Exception):
    """Another approval changed the proposal between our read and our write."""


def decide(proposal_id: str, user: User, body: DecisionCreate) -> dict[str, Any]:
    """Decide in a transaction of its own (bulk decisions, in-process callers)."""
    with transaction() as session:
        return decide_in(session, proposal_id, user, body)


async def decide_async(proposal_id: str, user: User, body: DecisionCreate) -> dict[str, Any]:
    """Decide through the group-commit writer (``backend/proposals/group_commit.py``): the
    HTTP path, where concurrent decisions share a transaction and its commit."""
    job = group_commit.Job(lambda session: decide_in(session, proposal_id, user, body), proposal_id)
    return await group_commit.writer.run(job)


def decide_in(session: Session, proposal_id: str, user: User, body: DecisionCreate) -> dict[str, Any]:
    """Decide in ``session``; the caller commits. A refusal that must be recorded (expiry,
    a refused approval) is raised as ``WritesStand``."""
    for _ in range(_ATTEMPTS):
        try:
            return _decide(session, proposal_id, user, body)
        except _Raced:
            continue
    raise ApiError(
        409, "concurrent_decision", "Other reviewers are deciding this proposal right now; try again."
    )


def _decide(session: Session, proposal_id: str, user: User, body: DecisionCreate) -> dict[str, Any]:
    started = tracing.now()
    # Locked: deciders of one proposal take turns, so each reads the decisions as they
    # stand (a racer reading a half-finished one would answer a wrong 403 or 409).
    proposal = still_pending(
        session, proposal_id, expired="This proposal expired before a decision.", for_update=True
    )
    now = utcnow()
    _check_claim(proposal, user, now)
    action_type = action_types.require(session, proposal.action_type)
    agent = session.get(Agent, proposal.agent_id)
    assert agent is not None
    # A pending proposal's decisions are its approvals so far, and every approval leaves the
    # count at 1 or more: none counted means none to read.
    decisions = decisions_of(session, proposal.id) if proposal.approval_count else []
    current = quorum.effective_payload(proposal, decisions)
    if body.seen_payload_sha256 is not None and body.seen_payload_sha256 != sha256_hex(current):
        raise ApiError(
            409,
            "stale_view",
            "The payload changed since you read it (another approver edited it); read it again.",
            param="seen_payload_sha256",
            extra={"payload_sha256": sha256_hex(current)},
        )
    if body.verdict == Verdict.reject:
        _check_reasons(action_type, body)
        if body.edited_payload is not None:
            raise ApiError(
                422,
                "edit_on_reject",
                "Only an approval can carry an edited payload.",
                param="edited_payload",
            )
        decision = _decision(proposal, user, body, None, None, [], now)
        _finish(session, proposal, user, decision, Status.rejected)
    else:
        decision = _approve(session, proposal, action_type, agent, decisions, current, user, body, now)
    # A Core INSERT: an ORM object and its flush cost more than the rest of the decision.
    session.connection().execute(_INSERT, decision)
    tracing.finished(
        "proposal.decide",
        started,
        traceparent=proposal.traceparent,
        context_trace_id=proposal.context.get("trace_id"),
        attributes={
            "signoff.proposal.id": proposal.id,
            "signoff.decision.verdict": decision["verdict"],
            "signoff.decision.reviewer": user.sub,
            "signoff.decision.edited": decision["edited_payload"] is not None,
            "signoff.policy.version": decision["policy_version"],
        },
    )
    return DecisionPublic.model_validate(decision).model_dump(mode="json")


def _approve(
    session: Session,
    proposal: Proposal,
    action_type: ActionType,
    agent: Agent,
    decisions: list[Decision],
    current: dict[str, Any],
    user: User,
    body: DecisionCreate,
    now: Any,
) -> dict[str, Any]:
    admission.check(session, agent, admission.Asker.reviewer)
    if body.reason_codes:
        _check_reasons(action_type, body)
    if any(d.reviewer_sub == user.sub for d in quorum.counted(proposal, decisions)):
        raise ApiError(409, "already_approved", "You approved this already; another reviewer must approve.")
    refused = duties.refusal(session, user, agent, action_type, decisions)
    if refused is not None:
        _refuse(session, proposal, user, "separation_of_duties", {"rule": refused})
        raise WritesStand(
            ApiError(403, "separation_of_duties", duties.MESSAGES[refused], extra={"rule": refused})
        )
    edited = _edit(action_type, current, body)
    final_payload = edited if edited is not None else current
    verdict = gate.judge_approval(session, user, agent, action_type, final_payload, proposal.context)
    if not verdict.allowed:
        _refuse(
            session,
            proposal,
            user,
            "insufficient_privilege",
            {"policy_ids": verdict.policy_ids, "policy_version": verdict.version},
        )
        raise WritesStand(
            ApiError(
                403,
                "insufficient_privilege",
                "Policy does not let you approve this action.",
                extra={"policy_ids": verdict.policy_ids},
            )
        )
    decision = _decision(proposal, user, body, edited, verdict.version, verdict.policy_ids, now)
    needed = quorum.required(session, proposal, action_type, agent)
    count = 1 if edited is not None else proposal.approval_count + 1
    if count >= needed:
        # The Nth approval: the receipt names every approval that counts (an edit restarted
        # the count at this one) and the payload now approved, signed in this transaction.
        earlier = [] if edited is not None else quorum.counted(proposal, decisions)
        approvers = [d.reviewer_sub for d in earlier if d.reviewer_sub] + [user.sub]
        receipt = receipts.issue(
            proposal.id, proposal.action_type, final_payload, approvers, verdict.version, now
        )
        final = {"approval_count": count, "approvals_required": needed}
        _finish(session, proposal, user, decision, Status.approved, receipt=receipt, **final)
        receipts.add(session, receipt)
        return decision
    # Short of the quorum: record the approval; the proposal stays pending for the next one.
    moved = transitions.set_if(
        session,
        proposal.id,
        Status.pending,
        proposal.updated_at,
        approval_count=count,
        approvals_required=needed,
        updated_at=now,
        **_released_if_held(proposal, user),
    )
    if not moved:
        raise _Raced
    audit.record(
        session,
        user.actor,
        AuditAction.DECISION_RECORDED,
        f"proposal:{proposal.id}",
        {**_audit_data(decision, user), "approvals": count, "approvals_required": needed},
    )
    return decision


def _edit(action_type: ActionType, current: dict[str, Any], body: DecisionCreate) -> dict[str, Any] | None:
    """The edited payload, checked; None when there is no edit (or it changes nothing)."""
    if body.edited_payload is None:
        return None
    edited = pii.restore_masked(body.edited_payload, current, action_type.payload_schema)
    if edited == current:
        return None
    edits.check(action_type, current, edited)
    action_types.validate_payload(action_type, edited, field="edited_payload")
    if not body.reason_codes and not body.comment.strip():
        raise ApiError(
            422, "edit_reason_required", "An edit needs a reason code or a comment.", param="comment"
        )
    return edited


def _released_if_held(proposal: Proposal, user: User) -> dict[str, Any]:
    """An approver's own claim ends with their approval, so the next approver can work."""
    if proposal.claimed_by == user.sub:
        return {"claimed_by": None, "claimed_by_name": None, "claim_expires_at": None}
    return {}


def _finish(
    session: Session,
    proposal: Proposal,
    user: User,
    decision: dict[str, Any],
    status: Status,
    receipt: receipts.Issued | None = None,
    **values: Any,
) -> None:
    data = _audit_data(decision, user)
    if receipt is not None:
        data["receipt"] = receipt.audit_data()
    if not transitions.leave_pending(
        session,
        proposal.id,
        status,
        actor=user.actor,
        action=AuditAction.PROPOSAL_DECIDED,
        data=data,
        at=decision["created_at"],
        unchanged_since=proposal.updated_at,
        **values,
    ):
        current = load(session, proposal.id, for_update=True)  # as it stands now
        if current.status == Status.pending:
            raise _Raced
        raise transitions.already_decided(current)


def _decision(
    proposal: Proposal,
    user: User,
    body: DecisionCreate,
    edited: dict[str, Any] | None,
    version: int | None,
    policy_ids: list[str],
    now: Any,
) -> dict[str, Any]:
    """The ``decisions`` row, as the Core INSERT takes it."""
    return {
        "id": new_id(),
        "proposal_id": proposal.id,
        "verdict": body.verdict.value,
        "decided_by": "user",
        "reviewer_sub": user.sub,
        "reviewer_email": user.email,
        "reviewer_name": user.name,
        "reviewer_groups": list(user.groups),
        "reason_codes": body.reason_codes,
        "comment": body.comment,
        "edited_payload": edited,
        "policy_version": version,
        "policy_ids": policy_ids,
        "created_at": now,
    }


def _audit_data(decision: dict[str, Any], user: User) -> dict[str, Any]:
    return {
        "verdict": decision["verdict"],
        "reason_codes": decision["reason_codes"],
        "comment": decision["comment"],
        "edited": decision["edited_payload"] is not None,
        "edited_payload": decision["edited_payload"],
        "policy_version": decision["policy_version"],
        "policy_ids": decision["policy_ids"],
        "reviewer": {"sub": user.sub, "email": user.email, "groups": list(user.groups)},
    }


def _refuse(session: Session, proposal: Proposal, user: User, code: str, data: dict[str, Any]) -> None:
    """A refused approval is audited; the caller raises the 403 as ``WritesStand``, so the
    audit event is committed before the 403 goes out."""
    audit.record(
        session,
        user.actor,
        AuditAction.DECISION_REFUSED,
        f"proposal:{proposal.id}",
        {"code": code, **data, "groups": list(user.groups)},
    )


def _check_claim(proposal: Proposal, user: User, now: Any) -> None:
    if (
        proposal.claimed_by is not None
        and proposal.claimed_by != user.sub
        and proposal.claim_expires_at is not None
        and proposal.claim_expires_at > now
    ):
        raise ApiError(
            409,
            "claimed",
            f"{proposal.claimed_by_name or proposal.claimed_by} is reviewing this.",
            extra={"claimed_by": proposal.claimed_by, "claim_expires_at": proposal.claim_expires_at},
        )


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
