"""The Table 2 gauges, read from the database when Prometheus scrapes.

Pending depth, the oldest pending proposal's age, open breakers and the latest scenario
pass rate are states, not events: counted in one process they would be wrong as soon as
a second replica or the expiry sweep changed them. Read at scrape time they are right for
the whole deployment (every replica reports the same value; take ``max`` across
instances). Their labels go through the same bounded label sets as the counters, so one
process never shows more than the caps' agents and action types: the rest are reported
together as ``other`` (summed, or the oldest age, or the worst pass rate).
"""

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

import structlog
from prometheus_client import disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select

from backend.core.db import read_session
from backend.observability.metrics import labels
from models.agents import Agent
from models.common import utcnow
from models.evals import EvalRun
from models.proposals import Proposal, Status

log = structlog.get_logger()

_PENDING = (
    select(Agent.name, Proposal.action_type, func.count(), func.min(Proposal.created_at))
    .join(Agent, Agent.id == Proposal.agent_id)  # type: ignore[arg-type]
    .where(Proposal.status == Status.pending.value)
    .group_by(Agent.name, Proposal.action_type)
)
_OPEN_BREAKERS = select(Agent.name).where(Agent.breaker_tripped_at.is_not(None))  # type: ignore[union-attr]
_RUNS = (
    select(Agent.name, EvalRun.action_type, EvalRun.pass_rate)
    .join(Agent, Agent.id == EvalRun.agent_id)  # type: ignore[arg-type]
    .where(EvalRun.status == "completed", EvalRun.pass_rate.is_not(None))  # type: ignore[union-attr]
    .order_by(EvalRun.created_at)
)


class TableTwoGauges(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without values: what registering asks, without a database read."""
        yield from _pending_families([])
        yield _open_family()
        yield _pass_rate_family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pending, breakers, runs = _read()
        except Exception:  # a scrape must answer even when the database does not
            log.exception("metrics_gauges_unreadable")
            return
        yield from _pending_families(pending)
        open_breakers = _open_family()
        counts: dict[str, int] = defaultdict(int)
        for name in breakers:
            counts[labels.agent(name)] += 1
        for name, count in sorted(counts.items()):
            open_breakers.add_metric([name], count)
        yield open_breakers
        pass_rate = _pass_rate_family()
        worst: dict[tuple[str, str], float] = {}
        for (agent, action_type), rate in runs.items():
            key = (labels.agent(agent), labels.action_type(action_type))
            worst[key] = min(rate, worst.get(key, rate))  # "other" shows the worst of them
        for key, rate in sorted(worst.items()):
            pass_rate.add_metric(list(key), rate)
        yield pass_rate


def _open_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("signoff_breaker_open", "Agents whose breaker is tripped", labels=["agent"])


def _pass_rate_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "signoff_scenario_pass_rate",
        "Pass rate of the latest completed scenario run",
        labels=["agent", "action_type"],
    )


def _read() -> tuple[list[tuple[str, str, int, datetime]], list[str], dict[tuple[str, str], float]]:
    with read_session() as session:
        pending = [tuple(row) for row in session.execute(_PENDING)]
        breakers = list(session.execute(_OPEN_BREAKERS).scalars())
        runs: dict[tuple[str, str], float] = {}
        for agent, action_type, rate in session.execute(_RUNS):
            runs[(agent, action_type)] = float(rate)  # ordered by time: the latest wins
    return pending, breakers, runs  # type: ignore[return-value]


def _pending_families(rows: list[tuple[str, str, int, datetime]]) -> Iterator[GaugeMetricFamily]:
    depth = GaugeMetricFamily(
        "signoff_pending", "Proposals waiting for a decision", labels=["agent", "action_type"]
    )
    oldest = GaugeMetricFamily(
        "signoff_oldest_pending_age_seconds",
        "Age of the oldest proposal waiting for a decision",
        labels=["agent", "action_type"],
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    firsts: dict[tuple[str, str], datetime] = {}
    for agent, action_type, count, first in rows:
        key = (labels.agent(agent), labels.action_type(action_type))
        counts[key] += count
        firsts[key] = min(first, firsts.get(key, first))
    now = utcnow()
    for key in sorted(counts):
        depth.add_metric(list(key), counts[key])
        first = firsts[key]
        if first.tzinfo is None:  # SQLite hands back naive UTC
            first = first.replace(tzinfo=now.tzinfo)
        oldest.add_metric(list(key), max((now - first).total_seconds(), 0.0))
    yield depth
    yield oldest


_registered: TableTwoGauges | None = None


def register() -> None:
    """Add the gauges to the default registry once (called by the app factory, not on import)."""
    global _registered
    if _registered is None:
        _registered = TableTwoGauges()
        # No `_created` timestamp series beside every counter and histogram: they double the
        # series count and no dashboard or rule here reads them.
        disable_created_metrics()
        REGISTRY.register(_registered)
