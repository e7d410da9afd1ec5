"""The metrics served from the rollups equal a straightforward recount over the same rows:
after placing (auto-approved, observed, pending, policy-denied), decisions, expiry,
cancellation and execution, for every filter, whole days and a day cut by ``since``."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from backend.auth.oidc import User
from backend.core.db import read_session, transaction
from backend.evals import metrics, rollup
from backend.proposals import expiry, outcomes
from models.agents import Dial
from models.proposals import Decision, ExecutionReport, Proposal
from tests.support.eval_helpers import decide, place
from tests.support.factories import (
    apply_policy,
    make_action_type,
    make_agent,
    policy_with_deny,
    refund_proposal,
)

SECOND = User("lead2", "lead2@example.com", "Lou Lead", ("reviewer", "support_refunds"))


def _key(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item.get("bucket", ""), item["agent_id"], item["action_type"])


def _same(since: datetime | None = None, agent: str | None = None, action_type: str | None = None) -> int:
    """Fast and recounted answers are equal, both shapes; returns how many groups matched."""
    with read_session() as session:
        for bucket in (False, True):
            fast = sorted(metrics._fast(session, since, agent, action_type, bucket), key=_key)
            slow = sorted(metrics.recount(session, since, None, agent, action_type, bucket), key=_key)
            assert fast == slow, (since, agent, action_type, bucket)
    return len(fast)


def _body(amount: float, i: int, **context: Any) -> dict[str, Any]:
    body = refund_proposal(amount)
    body["context"] = {**body["context"], "tokens": 1000 + 37 * i, "tool_calls": i % 5, **context}
    return body


def _expire_now(pids: list[str]) -> None:
    with transaction() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(Proposal).where(Proposal.id.in_(pids)).values(expires_at=past))  # type: ignore[attr-defined]
    while expiry.sweep_once():
        pass


def _all_checks(agents: list[str]) -> None:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date(), datetime.min.time(), UTC)
    cuts = (now - timedelta(days=7), now - timedelta(hours=30), midnight, midnight - timedelta(days=2))
    for since in (None, *cuts):
        _same(since)
        for agent in agents:
            assert _same(since, agent) >= 1 or since == midnight
        _same(since, agents[0], "refund")


def test_rollups_answer_as_the_recount(db: object) -> None:
    apply_policy(policy_with_deny(), "rollup test")
    human = make_agent()
    auto = make_agent(dials={"refund": Dial.execute})
    watch = make_agent(dials={"refund": Dial.observe})
    names = [human.name, auto.name, watch.name]

    pending = [place(human.id, _body(150.0 + i, i))["id"] for i in range(16)]
    place(human.id, _body(150.0, 99, tokens=None, tool_calls=None))
    denied = _body(30.0, 3)
    denied["payload"]["customer_id"] = "cus_blocked"  # the policy's forbid: rejected at placement
    place(human.id, denied)
    approved = [place(auto.id, _body(20.0 + i, i))["id"] for i in range(5)]  # approved by policy
    approved += [place(auto.id, _body(500.0 + i, i))["id"] for i in range(3)]  # wait for a human
    for i in range(3):
        place(watch.id, _body(10.0, i))
    four_eyes = make_action_type(approvals_required=2)
    pair = make_agent(grants=(four_eyes,))
    names.append(pair.name)
    quorum = [place(pair.id, {**_body(150.0, i), "action_type": four_eyes})["id"] for i in range(2)]
    _all_checks(names)

    for pid in quorum:  # a first approval: recorded, still pending
        decide(pid, "approve")
    _all_checks(names)
    decide(quorum[0], "approve", user=SECOND)
    for pid in pending[:5]:
        decide(pid, "approve")
    decide(pending[5], "reject", ["wrong_amount"])
    decide(pending[6], "reject", ["wrong_amount", "duplicate"])
    for pid in approved[5:]:
        decide(pid, "approve")
    outcomes.cancel(pending[7], human.id)
    _expire_now(pending[8:10])  # refund's on_expiry: rejected, reason "expired"
    for i, pid in enumerate(approved[:6]):
        outcomes.report_execution(pid, auto.id, ExecutionReport(status="succeeded" if i % 2 else "failed"))
    _all_checks(names)

    # Older days, through the same rows: move some proposals (and their decisions) back, rebuild
    # the rollups from the rows, then decide and expire old ones, which the commit step folds in.
    with transaction() as session:
        for days, pids in ((1, pending[:3] + pending[10:12]), (3, pending[3:6] + pending[12:14])):
            back = timedelta(days=days, hours=5)
            for model, column in ((Proposal, Proposal.id), (Decision, Decision.proposal_id)):
                rows = session.execute(select(model.id, model.created_at).where(column.in_(pids))).all()  # type: ignore[attr-defined]
                for ident, created in rows:
                    session.execute(update(model).where(model.id == ident).values(created_at=created - back))
        rollup.rebuild(session.connection())
    _all_checks(names)
    for edge in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)):
        _same(edge)
    decide(pending[10], "reject", ["not_eligible"])
    decide(pending[12], "approve")
    _expire_now([pending[11], pending[13]])
    _all_checks(names)

