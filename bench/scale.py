"""Cost at scale: the metrics summary, its 7-day view and the queue's count badges at 1M proposals.

Fills a fresh SQLite database (migrated as usual) with ``--proposals`` proposals spread over 90
days, 20 agents and 5 action types (the latest ``--pending`` of them still pending, 10 % of
those claimed), with their decisions (human and policy), by raw
``executemany`` (not the API), then rebuilds the rollups from the rows as migration 0009 does on
an existing database. Then times, over ``--calls`` calls each, in process on a read session as the
API's routes do: the summary (all time and since 7 days ago, as the console asks), the 7-day
timeseries, the queue counts (all, and for one action type), and the Audit page's incremental
verify when this tree has it (``backend/audit/verification.py``). Prints median and p95 of each,
and one straightforward recount (the cost before the rollups) for comparison. Targets: summary
< 200 ms, badges < 50 ms.

    .venv/bin/python bench/scale.py [--proposals 1000000] [--calls 15]
"""

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database, machine, make_agent
from tests.support.factories import make_action_type

DAYS = 90
AGENTS = 20
REASONS = (["wrong_amount"], ["not_eligible"], ["duplicate", "insufficient_evidence"], ["other"])


def _stamp(at: datetime) -> str:
    """How SQLAlchemy stores a UTC timestamp on SQLite."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def fill(path: str, proposals: int, pending: int, agents: list[str], types: list[str]) -> tuple[int, int]:
    """Insert the proposals and their decisions; returns (proposals, decisions)."""
    from models.common import new_id

    rng = random.Random(13)
    now = datetime.now(UTC)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    p_sql = (
        "INSERT INTO proposals (id, agent_id, action_type, action_type_version, summary, payload, evidence, "
        "context, status, mode, dial, policy_version, policy_outcome, policy_ids, flags, created_at, "
        "updated_at, expires_at, decided_at, claimed_by, claimed_by_name, claim_expires_at, approval_count) "
        "VALUES (?,?,?,1,?,?,?,?,?,?,?,1,?,'[]','[]',?,?,?,?,?,?,?,?)"
    )
    d_sql = (
        "INSERT INTO decisions (id, proposal_id, verdict, decided_by, reviewer_sub, reviewer_groups, "
        "reason_codes, comment, policy_ids, created_at) VALUES (?,?,?,?,?,'[]',?,'','[]',?)"
    )
    evidence = json.dumps([{"kind": "message", "title": "Customer email", "content": "It arrived broken."}])
    rows: list[tuple[Any, ...]] = []
    decisions: list[tuple[Any, ...]] = []
    n_decisions = 0
    for n in range(proposals):
        # Older days first, so ids and times grow together as they would.
        created = now - timedelta(seconds=DAYS * 86400 * (1 - n / proposals) + rng.random())
        pid = new_id()
        roll = rng.random() if n < proposals - pending else 1.0
        decided = None
        claimed = (None, None, None)
        expires = created + timedelta(days=3)
        mode, outcome, status = "approve", "propose", "pending"
        if roll < 0.55:  # approved by policy, mostly executed since
            mode, outcome = "execute", "execute"
            status = rng.choice(("executed", "executed", "executed", "failed", "approved"))
        elif roll < 0.75:  # decided by a reviewer
            status = "approved" if rng.random() < 0.7 else "rejected"
            decided = created + timedelta(seconds=rng.expovariate(1 / 900))
            codes = [] if status == "approved" else rng.choice(REASONS)
            verdict = "approve" if status == "approved" else "reject"
            decisions.append((new_id(), pid, verdict, "user", "lead", json.dumps(codes), _stamp(decided)))
            if status == "approved" and rng.random() < 0.8:
                status = "executed"
        elif roll < 0.80:  # denied by policy
            mode, outcome, status, decided = "approve", "deny", "rejected", created
            decisions.append(
                (new_id(), pid, "reject", "policy", None, json.dumps(["policy_denied"]), _stamp(created))
            )
        elif roll < 0.85:
            mode, outcome, status = "observe", "observe", "observed"
        elif roll < 0.90:
            status = rng.choice(("expired", "cancelled"))
            decided = created + timedelta(hours=1)
        elif roll < 1.0:  # never decided: expired by the sweep
            status, decided = "expired", created + timedelta(days=3)
        else:  # the live queue, the latest ``pending``: some claimed, deadlines over the next days
            expires = now + timedelta(minutes=rng.randint(1, 4000))
            if rng.random() < 0.1:
                claimed = ("lead", "Lee Lead", _stamp(now + timedelta(minutes=10)))
        context = {"model": "gpt-4.1", "tokens": rng.randint(200, 20_000), "tool_calls": rng.randint(0, 12)}
        stamp = _stamp(created)
        rows.append(
            (
                pid,
                agents[n % len(agents)],
                types[(n // 7) % len(types)],
                f"Refund for order ord_{n:07d}",
                json.dumps({"customer_id": f"cus_{n % 5000}", "order_id": f"ord_{n:07d}", "amount_usd": 40}),
                evidence,
                json.dumps(context),
                status,
                mode,
                mode if mode != "execute" else "execute",
                outcome,
                stamp,
                stamp,
                _stamp(expires),
                _stamp(decided) if decided else None,
                *claimed,
                1 if decided and status in ("approved", "executed") and mode == "approve" else 0,
            )
        )
        if len(rows) >= 20_000:
            conn.executemany(p_sql, rows)
            conn.executemany(d_sql, decisions)
            n_decisions += len(decisions)
            rows, decisions = [], []
    conn.executemany(p_sql, rows)
    conn.executemany(d_sql, decisions)
    n_decisions += len(decisions)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return proposals, n_decisions


def timed(name: str, calls: int, fn: Callable[[], Any]) -> None:
    fn()  # warm: first-use caches, pages read into the OS cache
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"  {name:<44} median {statistics.median(times):8.1f} ms   p95 {p95:8.1f} ms   ({calls} calls)")


def audit_page(calls: int) -> None:
    """The Audit page's check, ``verify_incremental``: a signed checkpoint, then 2,000 events
    after it (its cost is the events since the checkpoint, whatever the trail holds)."""
    try:
        from backend.audit import checkpoints, verification  # type: ignore[attr-defined]
    except ImportError:
        print("  (this tree has no backend/audit/verification.py: the Audit page's verify is not timed)")
        return
    from backend.audit import chain
    from backend.core.db import read_session, transaction
    from models.audit import AuditAction

    checkpoints.checkpoint_now()
    for _ in range(20):
        with transaction() as session:
            for i in range(100):
                chain.record(session, "system:bench", AuditAction.POLICY_UPDATED, f"thing:{i}", {"i": i})

    def run() -> None:
        with read_session() as session:
            result = verification.verify_incremental(session)
        if not result.ok:
            raise SystemExit(f"verify_incremental failed: {result}")

    timed("Audit page verify (2,000 events after a checkpoint)", calls, run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proposals", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=100_000, help="of them, the latest still pending")
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    print(machine(), f"load average {os.getloadavg()[0]:.2f}")
    with bench_database("sqlite") as db:
        from backend.core.db import get_engine, read_session
        from backend.evals import metrics, rollup
        from backend.proposals import console

        agents = [make_agent(grants=("refund",)).id for _ in range(AGENTS)]
        types = ["refund", *(make_action_type() for _ in range(4))]
        path = db.url.removeprefix("sqlite:///")
        t = time.perf_counter()
        n, d = fill(path, args.proposals, args.pending, agents, types)
        took = time.perf_counter() - t
        print(f"filled {n:,} proposals ({args.pending:,} pending) and {d:,} decisions in {took:.1f} s")
        t = time.perf_counter()
        with get_engine().begin() as conn:
            rollup.rebuild(conn)
        print(f"rollups rebuilt from the rows (migration 0009's cost) in {time.perf_counter() - t:.1f} s")
        size = sum(f.stat().st_size for f in Path(path).parent.glob(Path(path).name + "*"))
        print(f"database {size / 2**20:,.0f} MiB; load average {os.getloadavg()[0]:.2f}")
        week = datetime.now(UTC) - timedelta(days=7)

        def call(fn: Callable[..., Any], *a: Any, **kw: Any) -> Callable[[], Any]:
            def run() -> Any:
                with read_session() as session:
                    return fn(session, *a, **kw)

            return run

        timed("metrics summary, all time", args.calls, call(metrics.summary))
        timed("metrics summary, since 7 days ago", args.calls, call(metrics.summary, since=week))
        timed("metrics timeseries (7-day view)", args.calls, call(metrics.timeseries, since=week))
        timed("queue count badges", args.calls, call(console.queue_counts))
        timed("queue count badges, one action type", args.calls, call(console.queue_counts, "refund"))
        audit_page(args.calls)
        print("for comparison, the straightforward recount (what the summary cost before the rollups):")
        timed("recount, all time", 1, call(metrics.recount, None, None, None, None, False))
        timed("recount, 7-day view", 1, call(metrics.recount, week, None, None, None, True))
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
