"""Group commit for decisions and execution reports: many jobs, one transaction, each its own
outcome (``backend/proposals/group_commit.py``)."""

import uuid
from typing import Any

import pytest
from sqlmodel import select

from backend.audit import chain as audit
from backend.auth.oidc import User
from backend.core.db import read_session
from backend.core.errors import ApiError
from backend.proposals import decisions, group_commit, idempotency, outcomes, placing
from models.audit import AuditAction, AuditEvent
from models.proposals import Decision, DecisionCreate, ExecutionReport, Proposal, ProposalCreate
from models.receipts import Receipt
from tests.support.factories import make_agent, refund_proposal

LEAD = User("lead", "lead@example.com", "Lee Lead", ("reviewer", "support_refunds"))
APPROVE = DecisionCreate(verdict="approve")


def _placed(agent_id: str, n: int) -> list[str]:
    """``n`` pending refunds (over $100: a person decides)."""
    return [
        placing.create(
            agent_id, ProposalCreate.model_validate(refund_proposal(150.0)), uuid.uuid4().hex, None
        )[1]["id"]
        for _ in range(n)
    ]


def _decide(pid: str, user: User, body: DecisionCreate) -> group_commit.Job[dict[str, Any]]:
    return group_commit.Job(lambda session: decisions.decide_in(session, pid, user, body), pid)


def _error(outcome: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        group_commit.unwrap(outcome)
    return caught.value


def _events(subject: str) -> list[str]:
    with read_session() as session:
        return list(session.exec(select(AuditEvent.action).where(AuditEvent.subject == subject)).all())


def test_each_decision_in_a_batch_keeps_its_own_outcome(db: Any) -> None:
    agent = make_agent()
    good, creators, unreasoned = _placed(agent.id, 3)
    # make_agent's actor created the agent: separation of duties refuses its approval.
    creator = User("system:test", None, None, ("reviewer", "support_refunds"))
    results = group_commit.run_batch(
        [
            _decide(good, LEAD, APPROVE),
            _decide(creators, creator, APPROVE),
            _decide(unreasoned, LEAD, DecisionCreate(verdict="reject")),
            _decide(good, LEAD, APPROVE),
        ]
    )
    assert group_commit.unwrap(results[0])["verdict"] == "approve"
    refused = _error(results[1])
    assert (refused.status, refused.code) == (403, "separation_of_duties")
    assert _error(results[2]).code == "reason_required"
    # The same proposal again, later in the batch: it sees the first approval's writes.
    assert _error(results[3]).code == "already_decided"
    ids = [good, creators, unreasoned]
    with read_session() as session:
        rows = session.execute(select(Proposal.id, Proposal.status).where(Proposal.id.in_(ids))).all()  # type: ignore[attr-defined]
        statuses = {pid: status for pid, status in rows}
        decided = session.execute(select(Decision.proposal_id).where(Decision.proposal_id.in_(ids))).all()  # type: ignore[attr-defined]
        assert [pid for (pid,) in decided] == [good]
        assert len(session.exec(select(Receipt).where(Receipt.proposal_id == good)).all()) == 1
    assert statuses == {good: "approved", creators: "pending", unreasoned: "pending"}
    assert _events(f"proposal:{good}").count(AuditAction.PROPOSAL_DECIDED.value) == 1
    # The refusal's audit event stands although its job failed.
    assert AuditAction.DECISION_REFUSED.value in _events(f"proposal:{creators}")


def test_a_job_rolled_back_leaves_no_audit_event_and_spares_its_neighbours(db: Any) -> None:
    kept, dropped = f"test:kept-{uuid.uuid4().hex}", f"test:dropped-{uuid.uuid4().hex}"

    def fails(session: Any) -> None:
        audit.record(session, "system:test", AuditAction.PROPOSAL_CLAIMED, dropped, {})
        raise ValueError("this job's own trouble")

    def succeeds(session: Any) -> str:
        audit.record(session, "system:test", AuditAction.PROPOSAL_CLAIMED, kept, {})
        return "done"

    first, second = group_commit.run_batch([group_commit.Job(fails), group_commit.Job(succeeds)])
    with pytest.raises(ValueError):
        group_commit.unwrap(first)
    assert group_commit.unwrap(second) == "done"
    assert _events(dropped) == []
    assert _events(kept) == [AuditAction.PROPOSAL_CLAIMED.value]


def test_execution_reports_of_one_proposal_in_one_batch_are_recorded_once(db: Any) -> None:
    agent = make_agent()
    (pid,) = _placed(agent.id, 1)
    decisions.decide(pid, LEAD, APPROVE)
    succeeded = ExecutionReport(status="succeeded")
    other = ExecutionReport(status="failed", error="the payment provider said no")

    def report(body: ExecutionReport) -> group_commit.Job[tuple[dict[str, Any], bool]]:
        digest = idempotency.fingerprint(body.model_dump(mode="json"))
        return group_commit.Job(lambda s: outcomes.report_in(s, pid, agent.id, body, digest), pid)

    first, replay, different = group_commit.run_batch([report(succeeded), report(succeeded), report(other)])
    assert group_commit.unwrap(first)[1] is False
    content, replayed = group_commit.unwrap(replay)
    assert replayed and content["status"] == "succeeded"
    assert _error(different).code == "execution_already_reported"
    with read_session() as session:
        assert session.get(Proposal, pid).status == "executed"  # type: ignore[union-attr]
    assert _events(f"proposal:{pid}").count(AuditAction.PROPOSAL_EXECUTED.value) == 1
