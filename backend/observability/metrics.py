"""The seed's Table 2 controls as Prometheus metrics, counted from the audit trail.

Every state change already writes an audit event in its own transaction, so the events a
transaction wrote are the one source for the counters and histograms here: the ``metrics``
commit step (``backend/on_commit.py``) reads them before the commit (when a few ids may
need their agent and action type from the database) and counts them after it, so a
rolled-back or retried batch is never counted. The gauges (pending depth, oldest pending
age, open breakers, scenario pass rate) are read from the database at scrape time
(``backend/observability/gauges.py``), so they are right across replicas.

Labels ``agent`` (the agent's name) and ``action_type`` are bounded
(``backend/observability/labels.py``); the names are the API of the dashboards and alert
rules in ``deploy/``: add new ones, never rename.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from backend.audit import chain
from backend.core import commit
from backend.core.settings import get_settings
from backend.observability.labels import Bounded
from models.agents import Agent
from models.audit import AuditAction
from models.proposals import Proposal

AGENT_ACTION = ["agent", "action_type"]

PROPOSALS = Counter(
    "signoff_proposals", "Proposals by outcome (created, observed, approved, rejected, expired, "
    "cancelled, executed, failed)", [*AGENT_ACTION, "outcome"]
)
TOOL_CALLS = Histogram(
    "signoff_task_tool_calls", "Tool calls per task (the proposal's context.tool_calls)", AGENT_ACTION,
    buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144),
)
TOKENS = Histogram(
    "signoff_task_tokens", "Tokens per task (the proposal's context.tokens)", AGENT_ACTION,
    buckets=(100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000),
)
TIME_TO_DECISION = Histogram(
    "signoff_time_to_decision_seconds", "From placing to a reviewer's decision", AGENT_ACTION,
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400),
)
ESCALATIONS = Counter("signoff_escalations", "Proposals escalated past their deadline", AGENT_ACTION)
VIOLATIONS = Counter(
    "signoff_policy_violations",
    "Proposals the policy denied, and action types proposed without a grant",
    AGENT_ACTION,
)
BREAKER_TRIPS = Counter("signoff_breaker_trips", "Breaker trips", ["agent", "reason"])
WEBHOOK_FAILURES = Counter("signoff_webhook_failures", "Failed webhook delivery attempts", ["event_type"])

# The escalation event is written by the escalation sweep; counted by name so that this
# module needs no change whether or not this version's AuditAction has it.
ESCALATED = "proposal.escalated"
# Outcomes a status change announces, by audit action.
_FINAL = {
    AuditAction.PROPOSAL_EXPIRED: "expired",
    AuditAction.PROPOSAL_CANCELLED: "cancelled",
}


class _Labels:
    """The bounded label sets, made on first use from the settings."""

    def __init__(self) -> None:
        self._agents: Bounded | None = None
        self._types: Bounded | None = None

    def agent(self, name: str | None) -> str:
        if self._agents is None:
            self._agents = Bounded(get_settings().metrics_max_agents)
        return self._agents(name)

    def action_type(self, name: str | None) -> str:
        if self._types is None:
            self._types = Bounded(get_settings().metrics_max_action_types)
        return self._types(name)

    def reset(self) -> None:
        self._agents = self._types = None


labels = _Labels()
# Agent id -> name: names are labels, ids are what events carry. Bounded like the labels.
_names: dict[str, str] = {}
_NAMES_KEPT = 10_000


@dataclass(frozen=True)
class _Subject:
    agent: str
    action_type: str
    created_at: datetime | None


_NOTES = "signoff_metrics_observations"


def _observations(session: OrmSession) -> None:
    """Before the commit: turn this transaction's audit events into observations."""
    events = chain.written(session)
    if not events:
        return
    subjects = _subjects(session, events)
    notes: list[_Note] = []
    for event in events:
        notes.extend(_observe(event, subjects))
    if notes:
        session.info.setdefault(_NOTES, []).extend(notes)


_Note = tuple[Any, tuple[str, ...], float | None]  # metric, label values, value (None: +1)


def _observe(event: chain.WrittenEvent, subjects: dict[str, _Subject]) -> list[_Note]:
    action, data = event.action, event.data
    if action == AuditAction.BREAKER_TRIPPED:
        name = _names.get(event.subject_id or "")
        return [(BREAKER_TRIPS, (labels.agent(name), str(data.get("reason", ""))[:50]), None)]
    if action == AuditAction.PROPOSAL_REFUSED:
        if data.get("code") != "action_not_allowed":
            return []
        agent = labels.agent(_names.get(event.actor.removeprefix("agent:")))
        return [(VIOLATIONS, (agent, labels.action_type(data.get("action_type"))), None)]
    subject = subjects.get(event.subject_id or "") if event.subject_kind == "proposal" else None
    if subject is None:
        return []
    key = (labels.agent(subject.agent), labels.action_type(subject.action_type))
    if action == AuditAction.PROPOSAL_CREATED:
        notes: list[_Note] = [(PROPOSALS, (*key, "created"), None)]
        context = data.get("context") or {}
        if context.get("tool_calls") is not None:
            notes.append((TOOL_CALLS, key, float(context["tool_calls"])))
        if context.get("tokens") is not None:
            notes.append((TOKENS, key, float(context["tokens"])))
        if data.get("status") == "observed":
            notes.append((PROPOSALS, (*key, "observed"), None))
        return notes
    if action == AuditAction.POLICY_EVALUATED:
        return [(VIOLATIONS, key, None)] if data.get("outcome") == "deny" else []
    if action == AuditAction.PROPOSAL_DECIDED:
        outcome = "approved" if data.get("verdict") == "approve" else "rejected"
        notes = [(PROPOSALS, (*key, outcome), None)]
        if data.get("decided_by") != "policy" and subject.created_at is not None:
            waited = (event.at - subject.created_at).total_seconds()
            notes.append((TIME_TO_DECISION, key, max(waited, 0.0)))
        return notes
    if action == AuditAction.PROPOSAL_EXECUTED:
        outcome = "executed" if data.get("status") == "succeeded" else "failed"
        return [(PROPOSALS, (*key, outcome), None)]
    if action in _FINAL:
        return [(PROPOSALS, (*key, _FINAL[action]), None)]
    if str(action) == ESCALATED:
        return [(ESCALATIONS, key, None)]
    return []


def _subjects(session: OrmSession, events: list[chain.WrittenEvent]) -> dict[str, _Subject]:
    """Agent name, action type and creation time of every proposal the events are about:
    from the transaction's own ``proposal.created`` events (placement, the hot path, needs no
    read), otherwise from the database."""
    found: dict[str, tuple[str, str, datetime | None]] = {}
    wanted: set[str] = set()
    agent_ids: set[str] = set()
    for event in events:
        if event.subject_kind == "agent" and event.subject_id:
            agent_ids.add(event.subject_id)
        elif event.actor.startswith("agent:"):
            agent_ids.add(event.actor.removeprefix("agent:"))
        if event.subject_kind != "proposal" or not event.subject_id:
            continue
        if event.action == AuditAction.PROPOSAL_CREATED:
            agent_id = event.actor.removeprefix("agent:")
            found[event.subject_id] = (agent_id, str(event.data.get("action_type", "")), event.at)
            agent_ids.add(agent_id)
        else:
            wanted.add(event.subject_id)
    missing = sorted(wanted - set(found))
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        stmt = select(Proposal.id, Proposal.agent_id, Proposal.action_type, Proposal.created_at).where(
            Proposal.id.in_(chunk)  # type: ignore[attr-defined]
        )
        for pid, agent_id, action_type, created_at in session.execute(stmt):
            found[pid] = (agent_id, action_type, created_at)
            agent_ids.add(agent_id)
    _learn_names(session, agent_ids)
    return {
        pid: _Subject(_names.get(agent_id, agent_id), action_type, created_at)
        for pid, (agent_id, action_type, created_at) in found.items()
    }


def _learn_names(session: OrmSession, agent_ids: set[str]) -> None:
    unknown = sorted(a for a in agent_ids if a not in _names)
    if not unknown:
        return
    if len(_names) > _NAMES_KEPT:
        _names.clear()
    stmt = select(Agent.id, Agent.name).where(Agent.id.in_(unknown))  # type: ignore[attr-defined]
    _names.update(dict(session.execute(stmt).tuples().all()))


def _count(session: OrmSession) -> None:
    for metric, label_values, value in session.info.pop(_NOTES, ()):
        child = metric.labels(*label_values)
        if value is None:
            child.inc()
        else:
            child.observe(value)


def _forget(session: OrmSession) -> None:
    session.info.pop(_NOTES, None)


def webhook_failed(event_type: str) -> None:
    WEBHOOK_FAILURES.labels(event_type[:50]).inc()


COMMIT_STEP = commit.Step("metrics", before_commit=_observations, after_commit=_count, after_rollback=_forget)

__all__ = ["COMMIT_STEP", "labels", "webhook_failed"]
