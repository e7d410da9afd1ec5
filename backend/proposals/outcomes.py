"""What an agent reports after placing: it cancels a pending proposal, or it reports the
outcome of executing an approved one, once (a repeat with the same body is a replay, see
``backend/proposals/idempotency.py``)."""

import hashlib
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.agents import keys
from backend.controls import admission
from backend.core.db import read_session, transaction
from backend.core.errors import ApiError
from backend.observability import tracing
from backend.proposals import group_commit, idempotency, receipts, transitions
from backend.proposals.lookup import load, load_for_agent
from backend.proposals.reading import expire_if_due, full_view
from models.agents import Dial
from models.audit import AuditAction
from models.common import utcnow
from models.proposals import Execution, ExecutionReport, Status


def cancel(proposal_id: str, agent_id: str) -> dict[str, Any]:
    with transaction() as session:
        proposal = load_for_agent(session, agent_id, proposal_id)
        expire_if_due(session, proposal)
        if proposal.status == Status.cancelled:
            return full_view(session, proposal)
        if not transitions.leave_pending(
            session,
            proposal.id,
            Status.cancelled,
            actor=f"agent:{agent_id}",
            action=AuditAction.PROPOSAL_CANCELLED,
            data={},
        ):
            raise transitions.already_decided(load(session, proposal_id))
        session.refresh(proposal)
        return full_view(session, proposal)


def report_execution(proposal_id: str, agent_id: str, body: ExecutionReport) -> tuple[dict[str, Any], bool]:
    """Record the outcome once, in a transaction of its own. Returns (execution, replayed)."""
    request_hash = idempotency.fingerprint(body.model_dump(mode="json"))
    try:
        with transaction() as session:
            return report_in(session, proposal_id, agent_id, body, request_hash)
    except IntegrityError:
        return _replay_committed(proposal_id, request_hash)


async def report_execution_async(
    proposal_id: str, key: keys.KeyRef, body: ExecutionReport
) -> tuple[dict[str, Any], bool]:
    """Record the outcome through the group-commit writer (the HTTP path). The agent was let
    in on a moment-old answer about its key; the job checks key and agent for certain."""
    request_hash = idempotency.fingerprint(body.model_dump(mode="json"))

    def run(session: Session) -> tuple[dict[str, Any], bool]:
        agent, kill_switch_engaged = keys.recheck(session, key)
        refusal = admission.refusal(agent, kill_switch_engaged, admission.Asker.agent)
        if refusal is not None:
            raise refusal
        return report_in(session, proposal_id, key.agent_id, body, request_hash)

    job = group_commit.Job(run, proposal_id)
    try:
        return await group_commit.writer.run(job)
    except IntegrityError:
        return await run_in_threadpool(_replay_committed, proposal_id, request_hash)


def report_in(
    session: Session, proposal_id: str, agent_id: str, body: ExecutionReport, request_hash: str
) -> tuple[dict[str, Any], bool]:
    """Record the outcome in ``session``; the caller commits. Returns (execution, replayed).
    The proposal's row is locked (PostgreSQL), so two reports of one proposal take turns and
    the second finds the first."""
    started = tracing.now()
    proposal = load_for_agent(session, agent_id, proposal_id, for_update=True)
    # An execution and the move out of ``approved`` are written together: an approved
    # proposal has none yet, so only another status needs the look for one to replay.
    existing = None if proposal.status == Status.approved else session.get(Execution, proposal.id)
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
    receipt_jti = receipts.use(session, proposal, body.receipt_jti)
    execution = {
        "proposal_id": proposal.id,
        "receipt_jti": receipt_jti,
        "status": body.status,
        "result": body.result,
        "error": body.error,
        "request_hash": request_hash,
        "reported_by": f"agent:{agent_id}",
        "created_at": utcnow(),
    }
    # A Core INSERT: cheaper than an ORM object and its flush. A second report of this
    # proposal fails it (IntegrityError) and is answered as a replay.
    session.connection().execute(_INSERT, execution)
    if not transitions.finish(
        session,
        proposal.id,
        body.status == "succeeded",
        actor=f"agent:{agent_id}",
        data={
            "status": body.status,
            "error": body.error,
            "result_sha256": hashlib.sha256(orjson.dumps(body.result)).hexdigest(),
            "receipt_jti": receipt_jti,
        },
    ):
        raise transitions.already_decided(load(session, proposal_id, for_update=True))
    tracing.finished(
        "proposal.execution",
        started,
        traceparent=proposal.traceparent,
        attributes={"signoff.proposal.id": proposal.id, "signoff.execution.status": body.status},
    )
    return _public(execution), False


def _replay_committed(proposal_id: str, request_hash: str) -> tuple[dict[str, Any], bool]:
    """Another report of this proposal committed first (its insert won): replay it."""
    with read_session() as session:
        existing = session.get(Execution, proposal_id)
        assert existing is not None
        return _replay(existing, request_hash), True


_INSERT = insert(Execution.__table__)  # type: ignore[attr-defined]
_PUBLIC = ("status", "result", "error", "reported_by", "created_at")


def _public(execution: dict[str, Any]) -> dict[str, Any]:
    return {name: execution[name] for name in _PUBLIC}


def _public_execution(execution: Execution) -> dict[str, Any]:
    return _public(execution.model_dump())


def _replay(existing: Execution, request_hash: str) -> dict[str, Any]:
    idempotency.same_request(existing.request_hash, request_hash, _already_reported)
    return _public_execution(existing)


def _already_reported() -> ApiError:
    return ApiError(
        409, "execution_already_reported", "A different outcome was already reported for this proposal."
    )
