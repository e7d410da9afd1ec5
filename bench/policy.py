"""Policy gate benchmark: Cedar decisions per second, and what the gate adds to placing a proposal.

    .venv/bin/python bench/policy.py [--n 2000] [--db sqlite|postgres|both]

1. Decisions/s: the default policy, parsed once and cached, judging a refund (one
   proposal judgement = two Cedar decisions, propose and execute, in one batch call);
   also the same with the text re-parsed on every call, to show why the cache is there.
2. Added latency: ``proposals.create`` in-process on a real database, alternating calls
   with the real gate and with the gate replaced by a constant answer, same run; plus
   ``gate.judge`` (Cedar, on the policy and grants placement read once per batch) timed
   inside those same creates, and ``gate.judge_proposal`` alone in one transaction
   (version lookup, grants, entities, Cedar). Prints p50/p99 of each. On a busy 2-core
   machine the with/without difference is dominated by scheduling noise; the in-situ
   timing is the direct measure of what the gate adds.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cedarpy

from backend import on_commit

on_commit.install()  # in-process set-up commits as the API does

PG_ADMIN = os.environ.get("SIGNOFF_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(samples: list[float]) -> str:
    return f"p50 {pct(samples, 0.5) * 1e3:7.3f} ms  p99 {pct(samples, 0.99) * 1e3:7.3f} ms"


def decisions_per_second(n: int) -> None:
    from backend.controls.policy import gate
    from models.action_types import ActionType
    from models.agents import Agent

    text = (Path(__file__).resolve().parent.parent / "backend/policies/default.cedar").read_text()
    compiled = gate.compile_text(text, 1)
    schema = {"type": "object", "properties": {"amount_usd": {"type": "number"}}}
    refund = ActionType(name="refund", payload_schema=schema, approver_role="support_refunds")
    agent = Agent(id="01AAAAAAAAAAAAAAAAAAAAAAAA", name="bench")
    payload = {"customer_id": "c", "order_id": "o", "amount_usd": 42.5, "currency": "USD", "reason": "r"}
    context = {"model": "m", "tokens": 1200, "tool_calls": 3, "cost_usd": 0.012}
    outcome = gate.evaluate_proposal(compiled, agent, ["refund"], refund, payload, context)[0]
    assert outcome.outcome == "execute", outcome
    start = time.perf_counter()
    for _ in range(n):
        gate.evaluate_proposal(compiled, agent, ["refund"], refund, payload, context)
    cached = time.perf_counter() - start
    entities = gate.agent_entities(agent, ["refund"], refund)
    request = {
        "principal": 'Agent::"01AAAAAAAAAAAAAAAAAAAAAAAA"',
        "action": 'Action::"execute"',
        "resource": 'ActionType::"refund"',
        "context": gate.cedar_context(refund, payload, context),
    }
    m = max(200, n // 10)
    start = time.perf_counter()
    for _ in range(m):
        cedarpy.is_authorized(request, text, entities)
    reparsed = time.perf_counter() - start
    print("Cedar decisions (default policy, refund of $42.50):")
    print(f"  cached PolicySet : {n / cached:9.0f} proposal judgements/s = {2 * n / cached:9.0f} decisions/s")
    print(f"  re-parsed per call: {m / reparsed:9.0f} decisions/s")


def make_db(kind: str, tmp: Path) -> tuple[str, str]:
    from backend.core import schema
    from backend.core.db import make_engine

    if kind == "sqlite":
        url, name = f"sqlite:///{tmp / 'bench.db'}", ""
    else:
        import psycopg

        name = f"signoff_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url, name


def drop_db(kind: str, name: str) -> None:
    if kind == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def added_latency(kind: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url, name = make_db(kind, Path(tmp))
        os.environ["SIGNOFF_DATABASE_URL"] = url
        from backend.agents import service as agents
        from backend.catalog import action_types
        from backend.controls.policy import gate
        from backend.core.db import reset_engine, transaction
        from backend.core.settings import get_settings
        from backend.proposals import placing as proposals
        from models.agents import Agent, AgentCreate, Dial
        from models.proposals import ProposalCreate

        get_settings.cache_clear()
        reset_engine()
        try:
            with transaction() as session:
                view = agents.create(
                    session,
                    AgentCreate(name="bench", grants=["refund"], dials={"refund": Dial.execute}),
                    "bench",
                )
            agent_id = view["id"]
            real = gate.judge
            # Same outcome as the real gate gives this $42.50 refund, so both paths store the same rows.
            constant = gate.GateOutcome(version=1, outcome="execute", policy_ids=["bench"])

            def no_gate(*_: Any, **__: Any) -> gate.GateOutcome:
                return constant

            def body() -> ProposalCreate:
                return ProposalCreate.model_validate(
                    {
                        "action_type": "refund",
                        "payload": {
                            "customer_id": "c",
                            "order_id": uuid.uuid4().hex[:8],
                            "amount_usd": 42.5,
                            "currency": "USD",
                            "reason": "r",
                        },
                        "context": {"tokens": 1200, "tool_calls": 3, "cost_usd": 0.012},
                    }
                )

            in_situ: list[float] = []

            def timed(*args: Any, **kwargs: Any) -> gate.GateOutcome:
                t = time.perf_counter()
                verdict = real(*args, **kwargs)
                in_situ.append(time.perf_counter() - t)
                return verdict

            with_gate: list[float] = []
            without: list[float] = []
            for i in range(n + 50):
                for enabled in (True, False) if i % 2 else (False, True):
                    gate.judge = timed if enabled else no_gate  # type: ignore[assignment]
                    b = body()
                    t = time.perf_counter()
                    status, _, _ = proposals.create(agent_id, b, "h", None)
                    elapsed = time.perf_counter() - t
                    assert status == 201
                    if i >= 50:  # warm-up
                        (with_gate if enabled else without).append(elapsed)
            gate.judge = real  # type: ignore[assignment]

            alone: list[float] = []
            with transaction() as session:
                agent = session.get(Agent, agent_id)
                refund = action_types.require(session, "refund")
                payload = body().payload
                context = {"tokens": 1200, "tool_calls": 3, "cost_usd": 0.012}
                for i in range(n + 50):
                    t = time.perf_counter()
                    verdict = gate.judge_proposal(session, agent, refund, payload, context)  # type: ignore[arg-type]
                    if i >= 50:
                        alone.append(time.perf_counter() - t)
                assert verdict.outcome == "execute"
                session.rollback()
            print(f"Placing a proposal in-process on {kind} ({n} each, alternating):")
            print(f"  with the gate     : {ms(with_gate)}  mean {statistics.mean(with_gate) * 1e3:.3f} ms")
            print(f"  without the gate  : {ms(without)}  mean {statistics.mean(without) * 1e3:.3f} ms")
            print(
                f"  difference        : p50 {(pct(with_gate, 0.5) - pct(without, 0.5)) * 1e3:+.3f} ms  "
                f"p99 {(pct(with_gate, 0.99) - pct(without, 0.99)) * 1e3:+.3f} ms"
            )
            print(f"  the gate, timed inside those creates          : {ms(in_situ[50:])}")
            print(f"  judge_proposal alone (version, grants, Cedar): {ms(alone)}")
        finally:
            reset_engine()
            drop_db(kind, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs")
    decisions_per_second(args.n * 10)
    for kind in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        added_latency(kind, args.n)


if __name__ == "__main__":
    main()
