"""Placing a proposal: admission, validation, idempotency, gate, effective mode.

The order follows DESIGN.md section 2. Refusals that store nothing but an audit event
commit that event on their own and then raise.
"""

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, exists, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.db import transaction
from backend.errors import ApiError, not_found
from backend.services import action_types, audit, budgets, eval_runs, gate, system
from backend.services.idempotency import find_replay, store_response
from backend.services.views import proposal_public
from models.action_types import ActionType
from models.agents import Agent, Dial, Grant
from models.common import new_id, utcnow
from models.policies import Budget
from models.proposals import Decision, Proposal, ProposalCreate, Status, Verdict
from models.system import SystemFlag

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


# Built once: constructing a statement per request costs more than running it.
_ADMISSION = (
    select(
        Agent,
        Grant,
        ActionType,
        select(SystemFlag.value).where(SystemFlag.name == system.KILL_SWITCH).scalar_subquery(),
        # Whether the agent has budgets at all: most have none, which spares reading them.
        exists().where(Budget.agent_id == bindparam("agent_id")),
    )
    .outerjoin(Grant, and_(Grant.agent_id == Agent.id, Grant.action_type == bindparam("action_type")))
    .outerjoin(ActionType, ActionType.name == bindparam("action_type"))  # type: ignore[arg-type]
    .where(Agent.id == bindparam("agent_id"))
)


_INSERT_PROPOSAL = insert(Proposal)


def _load_for_admission(
    session: Session, agent_id: str, action_type: str
) -> tuple[Agent, Grant | None, ActionType | None, bool, bool]:
    """The agent, its grant, the action type, the kill switch, whether it has budgets: one round trip."""
    row = session.execute(_ADMISSION, {"agent_id": agent_id, "action_type": action_type}).one()
    return row[0], row[1], row[2], bool(row[3]), bool(row[4])


def _admission_refusal(
    session: Session,
    agent: Agent,
    grant: Grant | None,
    action_type: ActionType | None,
    kill_switch: bool,
    body: ProposalCreate,
) -> ApiError | None:
    """DESIGN section 2 steps 1-2. Refusals by policy of the house are audited."""
    actor = f"agent:{agent.id}"
    code: str | None = None
    if kill_switch:
        code, error = (
            "kill_switch_engaged",
            ApiError(403, "kill_switch_engaged", "The global kill switch is engaged."),
        )
    elif agent.suspended:
        code = "agent_suspended"
        error = ApiError(403, code, "This agent is suspended.")
    elif action_type is None:
        return ApiError(
            422, "unknown_action_type", f"No action type named {body.action_type!r}.", param="action_type"
        )
    elif grant is None:
        code = "action_not_allowed"
        error = ApiError(
            403,
            "action_not_allowed",
            f"This agent is not granted the action type {body.action_type!r}.",
            param="action_type",
        )
    else:
        return None
    audit.record(
        session,
        actor,
        "proposal.refused",
        f"agent:{agent.id}",
        {"code": code, "action_type": body.action_type},
    )
    return error


@dataclass(frozen=True)
class _Prepared:
    """What depends on the request body alone, computed before the write transaction.

    On SQLite the write lock is held from BEGIN IMMEDIATE to commit, so every
    millisecond moved out of the transaction is throughput for everyone.
    """

    context: dict[str, Any]
    evidence: list[dict[str, Any]]
    audit_evidence: list[dict[str, Any]]
    payload_sha256: str

    @classmethod
    def of(cls, body: ProposalCreate) -> "_Prepared":
        evidence = [e.model_dump(exclude_none=True, mode="json") for e in body.evidence]
        return cls(
            context=body.context.model_dump(exclude_none=True),
            evidence=evidence,
            audit_evidence=[
                {"kind": e["kind"], "title": e.get("title"), "uri": e.get("uri"), "sha256": e.get("sha256")}
                for e in evidence
            ],
            payload_sha256=hashlib.sha256(
                orjson.dumps(body.payload, option=orjson.OPT_SORT_KEYS)
            ).hexdigest(),
        )


def create(
    agent_id: str, body: ProposalCreate, request_hash: str, idempotency_key: str | None
) -> tuple[int, dict[str, Any], bool]:
    """Place one proposal. Returns (status code, response body, replayed)."""
    prepared = _Prepared.of(body)
    for _attempt in range(3):
        try:
            return _create_once(agent_id, body, prepared, request_hash, idempotency_key)
        except IntegrityError:
            # A concurrent request with the same key committed first; the retry replays it.
            if idempotency_key is None:
                raise
    raise ApiError(409, "idempotency_conflict", "Concurrent requests with this key; retry.")


def _create_once(
    agent_id: str,
    body: ProposalCreate,
    prepared: _Prepared,
    request_hash: str,
    idempotency_key: str | None,
) -> tuple[int, dict[str, Any], bool]:
    with transaction() as session:
        agent, grant, action_type, kill_switch, has_budgets = _load_for_admission(
            session, agent_id, body.action_type
        )
        refusal = _admission_refusal(session, agent, grant, action_type, kill_switch, body)
        if refusal is None:
            assert action_type is not None and grant is not None
            action_types.validate_payload(action_type, body.payload)
            if idempotency_key is not None:
                replay = find_replay(session, agent.id, idempotency_key, request_hash)
                if replay is not None:
                    return replay.status_code, replay.body, True
            result = _place(session, agent, action_type, grant, body, prepared, idempotency_key, has_budgets)
            if idempotency_key is not None:
                store_response(session, agent.id, idempotency_key, request_hash, 201, result)
            return 201, result, False
    raise refusal


def _place(
    session: Session,
    agent: Agent,
    action_type: ActionType,
    grant: Grant,
    body: ProposalCreate,
    prepared: _Prepared,
    idempotency_key: str | None,
    has_budgets: bool = True,
) -> dict[str, Any]:
    context = prepared.context
    # The gate first: it takes no lock, whereas the budget check takes the agent's guard row
    # (PostgreSQL) until commit; the shorter that hold, the more an agent's proposals overlap.
    verdict = gate.judge_proposal(session, agent, action_type, body.payload, context)
    flags = budgets.check_and_charge(session, agent, action_type, context, has_budgets)
    flags += budgets.record_outcome(session, agent, verdict.outcome)
    mode = effective_mode(Dial(grant.dial), agent.breaker_tripped_at is not None, verdict.outcome)
    mode, eval_tag = eval_runs.cap_for_run(session, agent.id, context, mode, flags)
    now = utcnow()
    expires_in = body.expires_in_seconds or action_type.default_expiry_seconds
    evidence = prepared.evidence
    row: dict[str, Any] = {
        "id": new_id(),
        "agent_id": agent.id,
        "action_type": action_type.name,
        "action_type_version": action_type.version,
        "summary": body.summary,
        "payload": body.payload,
        "evidence": evidence,
        "context": context,
        "status": (MODE_STATUS[mode] if mode else Status.rejected).value,
        "mode": (mode or Dial(grant.dial)).value,
        "dial": grant.dial,
        "policy_version": verdict.version,
        "policy_outcome": verdict.outcome,
        "policy_ids": verdict.policy_ids,
        "flags": flags,
        "idempotency_key": idempotency_key,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(seconds=expires_in),
        "decided_at": now if mode is None or mode == Dial.execute else None,
        "claimed_by": None,
        "claimed_by_name": None,
        "claim_expires_at": None,
    }
    # Core insert: the create path is the hot path, and the ORM's unit of work costs more than the row.
    session.connection().execute(_INSERT_PROPOSAL, row)
    decisions: list[Decision] = []
    if row["decided_at"] is not None:
        decisions.append(
            Decision(
                proposal_id=row["id"],
                verdict=(Verdict.reject if mode is None else Verdict.approve).value,
                decided_by="policy",
                reason_codes=["policy_denied"] if mode is None else [],
                policy_version=verdict.version,
                policy_ids=verdict.policy_ids,
                created_at=now,
            )
        )
        session.add_all(decisions)
    eval_runs.link(session, row["id"], eval_tag)
    actor = f"agent:{agent.id}"
    subject = f"proposal:{row['id']}"
    audit.record(
        session,
        actor,
        "proposal.created",
        subject,
        {
            "action_type": row["action_type"],
            "status": row["status"],
            "mode": row["mode"],
            "dial": row["dial"],
            "summary": row["summary"],
            "flags": flags,
            "payload_sha256": prepared.payload_sha256,
            "evidence": prepared.audit_evidence,
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
            "errors": verdict.errors,
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
    return proposal_public(Proposal.model_construct(**row), decisions=decisions, agent_name=agent.name)


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
