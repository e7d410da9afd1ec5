"""Export benchmark: seed N decided proposals, stream them as JSONL, print time and memory.

    .venv/bin/python bench/export.py                    # 100,000 cases on SQLite (temp file)
    .venv/bin/python bench/export.py --cases 20000 --database-url postgresql://postgres@127.0.0.1/test_bench

Exports a tenth of the cases and then all of them from the same database, each twice:
once for time (no tracing), once under tracemalloc for the peak of Python allocations.
Memory is flat when the 10x larger export peaks at about the same figure. Target: the
full export of 100,000 cases under 5 s.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import on_commit
from backend.agents import service as agents
from backend.core import schema
from backend.core.db import get_engine, read_session, reset_engine, transaction
from backend.core.settings import get_settings
from backend.evals import export
from models.agents import AgentCreate
from models.common import new_id, utcnow
from models.evals import Annotation
from models.proposals import Decision, Proposal

on_commit.install()  # in-process set-up commits as the API does

REASONS = [["wrong_amount"], ["not_eligible"], ["duplicate", "insufficient_evidence"], ["other"]]


def seed(n: int) -> tuple[str, object]:
    """Insert n decided proposals (with decisions; every 20th annotated) in bulk."""
    with transaction() as session:
        agent = agents.create(
            session, AgentCreate(name=f"bench-{uuid.uuid4().hex[:6]}", grants=["refund"]), "bench"
        )
    engine = get_engine()
    start = utcnow() - timedelta(days=30)
    cut = None
    chunk = 5000
    for base in range(0, n, chunk):
        props, decs, notes = [], [], []
        for i in range(base, min(base + chunk, n)):
            # decided_at grows with i, so the first tenth by decision time is the first n/10 rows
            decided = start + timedelta(seconds=i + 600)
            created = decided - timedelta(seconds=30 + i % 570)
            pid = new_id()
            payload = {
                "customer_id": f"cus_{i % 5000}",
                "order_id": f"ord_{i}",
                "amount_usd": 10 + i % 400,
                "currency": "USD",
                "reason": "Package arrived damaged",
            }
            reject = i % 3 == 0
            props.append(
                {
                    "id": pid,
                    "agent_id": agent["id"],
                    "action_type": "refund",
                    "action_type_version": 1,
                    "summary": f"Refund ${payload['amount_usd']} for ord_{i}",
                    "payload": payload,
                    "evidence": [
                        {
                            "kind": "message",
                            "title": "Customer email",
                            "content": "My blender arrived cracked.",
                        },
                        {
                            "kind": "record",
                            "title": "Order",
                            "content": {"order_id": f"ord_{i}", "total": 120.0},
                        },
                    ],
                    "context": {
                        "model": "gpt-bench",
                        "prompt_version": f"v{i % 3}",
                        "tool_schema_version": "7",
                        "trace_id": uuid.uuid4().hex,
                        "tokens": 1200,
                        "tool_calls": 3,
                        "cost_usd": 0.01,
                    },
                    "status": "rejected" if reject else "approved",
                    "mode": "approve",
                    "dial": "approve",
                    "policy_version": 1,
                    "policy_outcome": "propose",
                    "policy_ids": ["refund-needs-human"],
                    "flags": [],
                    "created_at": created,
                    "updated_at": decided,
                    "expires_at": created + timedelta(days=1),
                    "decided_at": decided,
                }
            )
            decs.append(
                {
                    "id": new_id(),
                    "proposal_id": pid,
                    "verdict": "reject" if reject else "approve",
                    "decided_by": "user",
                    "reviewer_sub": "lead",
                    "reviewer_email": "lead@example.com",
                    "reviewer_name": "Lee Lead",
                    "reviewer_groups": ["reviewer", "support_refunds"],
                    "reason_codes": REASONS[i % 4] if reject else [],
                    "comment": "bench",
                    "edited_payload": {**payload, "amount_usd": 5} if i % 7 == 0 and not reject else None,
                    "policy_version": 1,
                    "policy_ids": [],
                    "created_at": decided,
                }
            )
            if i % 20 == 0:
                notes.append(
                    {
                        "id": new_id(),
                        "proposal_id": pid,
                        "author_sub": "lead",
                        "author_name": "Lee Lead",
                        "labels": ["bench"],
                        "severity": "low",
                        "note": "",
                        "created_at": decided,
                        "updated_at": decided,
                    }
                )
            if i == n // 10 - 1:
                cut = decided + timedelta(microseconds=1)
        with engine.begin() as conn:
            conn.execute(Proposal.__table__.insert(), props)  # type: ignore[attr-defined]
            conn.execute(Decision.__table__.insert(), decs)  # type: ignore[attr-defined]
            if notes:
                conn.execute(Annotation.__table__.insert(), notes)  # type: ignore[attr-defined]
    return agent["name"], cut


def run_export(filters: export.ExportFilter, out: Path, traced: bool) -> tuple[int, int, float, float, int]:
    """(cases, bytes, wall seconds, CPU seconds, peak traced bytes)."""
    if traced:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    size = 0
    with out.open("wb") as fh, read_session() as session:
        for chunk in export.stream(filters, "jsonl", session=session):
            size += len(chunk)
            fh.write(chunk)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = 0
    if traced:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    with out.open("rb") as fh:
        lines = sum(1 for _ in fh)
    return lines, size, elapsed, cpu, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--database-url", default=None, help="Default: a temporary SQLite file.")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="signoff-export-bench-"))
    try:
        _bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args: argparse.Namespace, tmp: Path) -> None:
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    os.environ["SIGNOFF_DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_engine()
    schema.upgrade(get_engine())
    print(f"database: {get_engine().dialect.name}; cpus: {os.cpu_count()}; python {sys.version.split()[0]}")
    t0 = time.perf_counter()
    agent, cut = seed(args.cases)
    print(f"seeded {args.cases:,} decided proposals in {time.perf_counter() - t0:.1f} s")
    out = tmp / "cases.jsonl"
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = []
    for label, filters in (
        ("10%", export.ExportFilter(agent=agent, until=cut)),
        ("100%", export.ExportFilter(agent=agent)),
    ):
        n, size, secs, cpu, _ = run_export(filters, out, traced=False)
        peak = run_export(filters, out, traced=True)[4]
        rows.append((label, n, size, secs, cpu, peak))
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"load average (1 min) during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = ["export", "cases", "MB out", "wall s", "CPU s", "cases/s", "peak MB"]
    print(" ".join(f"{h:>9}" for h in head) + "  (peak: tracemalloc, Python heap)")
    for label, n, size, secs, cpu, peak in rows:
        cells = [
            label,
            f"{n:,}",
            f"{size / 1e6:.1f}",
            f"{secs:.2f}",
            f"{cpu:.2f}",
            f"{n / secs:,.0f}",
            f"{peak / 1e6:.2f}",
        ]
        print(" ".join(f"{c:>9}" for c in cells))
    small, big = rows
    print(
        f"memory: peak {big[5] / small[5]:.2f}x for {big[1] / max(small[1], 1):.0f}x the cases; "
        f"process max RSS grew {(rss1 - rss0) / 1024:.1f} MB over both exports"
    )
    verdict = "MET" if big[3] < 5 else "NOT MET"
    print(f"target: {args.cases:,} cases under 5 s -> {verdict} (wall {big[3]:.2f} s, CPU {big[4]:.2f} s)")


if __name__ == "__main__":
    main()
