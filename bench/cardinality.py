"""Metrics cardinality with many agents: the series count stays bounded.

    .venv/bin/python bench/cardinality.py [--db sqlite] [--agents 1000]

Places one proposal for each of ``--agents`` agents (in process, through the same commit
steps as the API), decides a third of them, trips one breaker per ten agents, then counts
the Prometheus series of every ``signoff_*`` metric in one scrape and times the scrape
(the gauges are read from the database). With the default caps
(``SIGNOFF_METRICS_MAX_AGENTS=100``, ``SIGNOFF_METRICS_MAX_ACTION_TYPES=50``) the agent
label takes at most 101 values (the cap and ``other``), whatever the number of agents.
"""

import argparse
import time
from collections import Counter

import orjson
from common import bench_database, machine
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from backend import on_commit
from backend.auth.oidc import User
from backend.core.db import transaction
from backend.observability import gauges
from backend.proposals import decisions, idempotency, placing
from models.agents import Agent
from models.common import utcnow
from models.proposals import DecisionCreate, ProposalCreate
from tests.support.factories import make_agent, refund_proposal

LEAD = User("lead", "lead@example.com", "Lee Lead", ("reviewer", "support_refunds"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--agents", type=int, default=1000)
    args = parser.parse_args()
    on_commit.install()
    gauges.register()
    print(f"machine: {machine()}")
    with bench_database(args.db) as _db:
        started = time.perf_counter()
        agents = [make_agent() for _ in range(args.agents)]
        for n, agent in enumerate(agents):
            body = refund_proposal(20.0 + n % 50)
            _, view, _ = placing.create(
                agent.id, ProposalCreate.model_validate(body), idempotency.body_hash(orjson.dumps(body)), None
            )
            if n % 3 == 0:
                decisions.decide(view["id"], LEAD, DecisionCreate(verdict="approve"))
        with transaction() as session:
            tripped = [a.id for n, a in enumerate(agents) if n % 10 == 0]
            session.execute(
                update(Agent).where(Agent.id.in_(tripped)).values(breaker_tripped_at=utcnow())  # type: ignore[attr-defined]
            )
        took = time.perf_counter() - started
        print(f"{args.db}: {args.agents} agents placed and a third decided in {took:.1f}s")
        scrape_started = time.perf_counter()
        text = generate_latest(REGISTRY).decode()
        scrape_ms = (time.perf_counter() - scrape_started) * 1000
        series: Counter[str] = Counter()
        agents_seen: set[str] = set()
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("signoff_") or family.name.startswith("signoff_http"):
                continue
            for sample in family.samples:
                series[family.name] += 1
                if "agent" in sample.labels:
                    agents_seen.add(sample.labels["agent"])
        for name, count in sorted(series.items()):
            print(f"  {name:45s} {count:6d} series")
        print(
            f"{args.db}: {sum(series.values())} signoff_* series in all, {len(agents_seen)} agent label "
            f"values (cap 100 + 'other'), scrape {scrape_ms:.0f} ms, {len(text) / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
