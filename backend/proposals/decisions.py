"""A reviewer's decision on a pending proposal: approve (perhaps edited) or reject.

The rules, in the order they are checked: the proposal must still be pending (one past
its deadline expires instead); a rejection needs known reason codes; an approval needs the
agent to be allowed to act (``backend/controls/admission.py``), an edit that passes the
action type's schema, and a policy that lets this reviewer approve
(``backend/controls/policy/gate.py``). The decision then leaves ``pending`` through
``backend/proposals/transitions.py``, where exactly one of concurrent deciders wins.
"""

from typing import Any

from backend.audit import chain as audit
from backend.auth.oidc import User
from backend.catalog import action_types
from backend.controls import admission
from backend.controls.policy import gate
from backend.core.db import transaction
from backend.core.errors import ApiError
from backend.proposals import receipts, transitions
from backend.proposals.lookup import load
from backend.proposals.reading import still_pending
from models.agents import Agent
from models.audit import AuditAction
from models.common import utcnow
from models.proposals import Decision, DecisionCreate, DecisionPublic, Status, Verdict


def decide(proposal_id: str, user: User, body: DecisionCreate) -> dict[str, Any]:
    with transaction() as session:
        proposal = still_pending(session, proposal_id, expired="This proposal expired before a decision.")
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
            admission.check(session, agent, admission.Asker.reviewer)
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
                    AuditAction.DECISION_REFUSED,
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
        receipt = None
        if body.verdict == Verdict.approve:
            # Signed now, over the payload being approved (issue 14's quorum passes every approver).
            receipt = receipts.issue(
                proposal.id, proposal.action_type, final_payload, [user.sub], allowed_version, now
            )
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
        if not transitions.leave_pending(
            session,
            proposal.id,
            Status.approved if body.verdict == Verdict.approve else Status.rejected,
            actor=user.actor,
            action=AuditAction.PROPOSAL_DECIDED,
            data={
                "verdict": decision.verdict,
                "reason_codes": decision.reason_codes,
                "comment": decision.comment,
                "edited": body.edited_payload is not None,
                "edited_payload": body.edited_payload,
                "policy_version": allowed_version,
                "policy_ids": policy_ids,
                "reviewer": {"sub": user.sub, "email": user.email, "groups": list(user.groups)},
                **({"receipt": receipt.audit_data()} if receipt else {}),
            },
            at=now,
        ):
            session.rollback()
            raise transitions.already_decided(load(session, proposal_id))
        session.add(decision)
        if receipt is not None:
            receipts.add(session, receipt)
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
