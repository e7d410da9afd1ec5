"""The seed's Table 2 controls as metrics: a scripted day moves each one as it should."""

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from backend.agents import lookup
from backend.audit import chain as audit
from backend.controls.budgets import service as budgets
from backend.core.db import transaction
from backend.observability import gauges, metrics
from backend.proposals import outcomes
from backend.webhooks import service as webhooks
from backend.webhooks import worker
from models.audit import AuditAction
from models.evals import EvalRun
from models.policies import BudgetSpec
from models.proposals import ExecutionReport
from models.webhooks import WebhookCreate
from tests.support.databases import Database
from tests.support.eval_helpers import decide, place
from tests.support.factories import (
    apply_policy,
    default_policy_text,
    make_agent,
    policy_with_deny,
    refund_proposal,
)
from tests.support.servers import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape() -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


@pytest.fixture
def fresh_labels(fresh_database: Database) -> Iterator[None]:
    """Metrics are process-wide: admit this test's agent under its own label."""
    gauges.register()
    metrics.labels.reset()
    yield
    metrics.labels.reset()


def test_a_scripted_day_moves_every_table_2_control(fresh_database: Database, fresh_labels: None) -> None:
    bot = make_agent()
    before = scrape()
    who = {"agent": bot.name, "action_type": "refund"}

    # Morning: four refunds with their tool calls and tokens; two approved (one edited), one rejected.
    placed = [place(bot.id, refund_proposal(20.0 + i)) for i in range(4)]
    assert all(p["status"] == "pending" for p in placed)
    first, second, third, _waiting = (p["id"] for p in placed)
    decide(first, "approve")
    decide(second, "approve", comment="capped", edited={**placed[1]["payload"], "amount_usd": 10.0})
    decide(third, "reject", ["wrong_amount"])
    outcomes.report_execution(first, bot.id, ExecutionReport(status="succeeded", result={"refund": "re_1"}))

    # Noon: a policy violation (denied by a forbid policy).
    apply_policy(policy_with_deny(), "violation test")
    try:
        blocked = {**refund_proposal()["payload"], "customer_id": "cus_blocked"}
        denied = place(bot.id, refund_proposal(30.0, payload=blocked))
    finally:
        apply_policy(default_policy_text(), "restore")
    assert denied["status"] == "rejected"

    # Afternoon: a tool-call spike crosses the budget and trips the breaker.
    with transaction() as session:
        agent = lookup.find(session, bot.id)
        spec = BudgetSpec(action_type="refund", max_tool_calls_per_task=10)
        budgets.replace(session, agent, [spec], "user:ada")
    spike = refund_proposal(25.0)
    spike["context"] = {**spike["context"], "tool_calls": 50, "tokens": 90_000}
    place(bot.id, spike)

    # Evening: an escalation, a completed scenario run, and a webhook that cannot be reached.
    escalated = getattr(AuditAction, "PROPOSAL_ESCALATED", None)
    if escalated is not None:  # written by the escalation sweep once it exists
        with transaction() as session:
            audit.record(session, "system", escalated, f"proposal:{_waiting}", {})
    with transaction() as session:
        run = EvalRun(suite="refunds", agent_id=bot.id, action_type="refund", status="completed")
        run.cases, run.passed, run.pass_rate = 4, 3, 0.75
        session.add(run)
    with transaction() as session:
        down = WebhookCreate(url=f"http://127.0.0.1:{free_port()}/down", event_types=["proposal.created"])
        hook = webhooks.create(session, down, "user:ada")
    place(bot.id, refund_proposal(5.0))
    settings = worker.WebhookSettings(timeout_seconds=1)
    with httpx.Client() as http:
        for due in worker.claim_due(settings, 100):
            worker.attempt(settings, http, due)
    with transaction() as session:
        webhooks.delete(session, hook["id"], "user:ada")

    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("signoff_proposals_total", outcome="created", **who) == 7
    assert delta("signoff_proposals_total", outcome="approved", **who) == 2
    # The reviewer's rejection and the policy's.
    assert delta("signoff_proposals_total", outcome="rejected", **who) == 2
    assert delta("signoff_proposals_total", outcome="executed", **who) == 1
    # Tool calls and tokens per task: six tasks, one of them the spike.
    assert delta("signoff_task_tool_calls_count", **who) == 7
    assert delta("signoff_task_tool_calls_sum", **who) == 6 * 3 + 50
    assert delta("signoff_task_tool_calls_bucket", le="13.0", **who) == 6
    assert delta("signoff_task_tokens_sum", **who) == 6 * 1200 + 90_000
    # Time to decision: the three human decisions, not the policy's.
    assert delta("signoff_time_to_decision_seconds_count", **who) == 3
    assert delta("signoff_policy_violations_total", **who) == 1
    assert delta("signoff_breaker_trips_total", agent=bot.name) == 1
    assert value(after, "signoff_breaker_open", agent=bot.name) == 1
    assert value(after, "signoff_scenario_pass_rate", **who) == 0.75
    # Waiting: the one never decided, the spike (capped at draft) and the evening's refund.
    assert value(after, "signoff_pending", **who) == 3
    assert value(after, "signoff_oldest_pending_age_seconds", **who) >= 0
    assert ("signoff_oldest_pending_age_seconds", tuple(sorted(who.items()))) in after
    assert delta("signoff_webhook_failures_total", event_type="proposal.created") >= 1
    if escalated is not None:
        assert delta("signoff_escalations_total", **who) == 1


def test_labels_stay_bounded_beyond_the_cap() -> None:
    from backend.observability.labels import OTHER, Bounded

    bounded = Bounded(3)
    seen = {bounded(f"agent-{i}") for i in range(1000)}
    assert seen == {"agent-0", "agent-1", "agent-2", OTHER}
    assert bounded("agent-1") == "agent-1"
