"""2,000 long-polling agents on one API process: what they cost while they wait.

Starts a database, an identity provider and the API in this process (so the pool can be
watched), places N proposals, and has a child process long-poll each of them. While all
wait it prints the p50/p99 of a reviewer's queue request, the API process's CPU use while
idle (as a share of one core) and the most connections the pool had out; then decides
them all and prints how long the last waiter took to hear.

    .venv/bin/python bench/waiters.py                 # SQLite, 2,000 waiters
    .venv/bin/python bench/waiters.py --db postgres --waiters 2000
"""

import argparse
import statistics
import time

import httpx
from common import bench_database, machine

from tests.support.env import CLIENT_ID
from tests.support.inproc import serve
from tests.support.servers import OidcProvider, free_port
from tests.support.waiters import Crowd, CrowdProcess, all_waiting, wait_until


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--waiters", type=int, default=2000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    oidc = OidcProvider(free_port())
    try:
        with bench_database(args.db):
            token = oidc.id_token("bench-lead", ["reviewer", "support_refunds"], CLIENT_ID)
            lead = {"Authorization": f"Bearer {token}"}
            crowd = Crowd.make(args.waiters)
            with serve(oidc.issuer) as api:
                agents = CrowdProcess(api.url, crowd)
                try:
                    started = time.monotonic()
                    wait_until(lambda: all_waiting(args.waiters)() and api.pool.in_use == 0)
                    print(f"{args.waiters} waiters in after {time.monotonic() - started:.1f} s")
                    cpu0, wall0 = time.process_time(), time.monotonic()
                    time.sleep(args.idle_seconds)
                    idle = (time.process_time() - cpu0) / (time.monotonic() - wall0)
                    latencies = []
                    with httpx.Client(base_url=api.url, timeout=60) as client:
                        for _ in range(50):
                            t = time.perf_counter()
                            r = client.get("/v1/queue", params={"limit": 50}, headers=lead)
                            assert r.status_code == 200
                            latencies.append(time.perf_counter() - t)
                    latencies.sort()
                    decided = time.monotonic()
                    crowd.decide_all()
                    answers = agents.answers()
                    heard = time.monotonic() - decided
                finally:
                    agents.close()
            assert len(answers) == args.waiters
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            print(f"machine: {machine()}; database: {args.db}")
            print(f"idle CPU with {args.waiters} waiting: {idle * 100:.1f} % of one core")
            print(f"reviewer queue request while they wait: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
            print(f"pool: at most {api.pool.peak} of {api.pool.size} connections out")
            print(f"decide all and every waiter answered: {heard:.1f} s")
    finally:
        oidc.close()


if __name__ == "__main__":
    main()
