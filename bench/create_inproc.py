"""In-process cost of placing one proposal: SQL statements and milliseconds, single-threaded.

    .venv/bin/python bench/create_inproc.py [--db sqlite postgres] [-n 400]

Counts statements with a ``before_cursor_execute`` listener around authentication plus
``backend.proposals.placing.create``, the same work the HTTP route does minus HTTP.
"""

import argparse
import time
import uuid

from common import bench_database, machine, make_agent, refund_proposal
from sqlalchemy import event


def run(kind: str, n: int, show: bool) -> None:
    from backend.agents import keys
    from backend.core.db import get_engine, read_session
    from backend.proposals import placing as proposals
    from models.proposals import ProposalCreate

    with bench_database(kind):
        creds = make_agent()
        body = refund_proposal()
        raw = ProposalCreate.model_validate(body)
        statements: list[str] = []

        def count(_c, _cur, statement, *_a) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        def once() -> None:
            with read_session() as session:
                agent, _ = keys.authenticate(session, creds.key)
            proposals.create(agent.id, raw, uuid.uuid4().hex, uuid.uuid4().hex)

        for _ in range(20):
            once()
        event.listen(get_engine(), "before_cursor_execute", count)
        once()
        event.remove(get_engine(), "before_cursor_execute", count)
        if show:
            for s in statements:
                print("   ", " ".join(s.split())[:150])
        start = time.perf_counter()
        for _ in range(n):
            once()
        ms = (time.perf_counter() - start) * 1000 / n
        print(f"{kind:9s} statements per create (auth + create): {len(statements):3d}   {ms:.2f} ms/create")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("-n", type=int, default=400)
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    print(machine())
    for kind in args.db:
        run(kind, args.n, args.show)


if __name__ == "__main__":
    main()
