"""Latency from a reviewer's decision to (a) the SDK's `wait()` returning, (b) the webhook arriving.

Starts its own database, identity provider and API server (one process), then for each of
N proposals: an SDK thread long-polls `wait()`, a reviewer approves over HTTP, and we time
the decision request's send to `wait()` returning, and to the signed `proposal.decided`
webhook reaching a local receiver. Prints p50 / p99 / max.

    .venv/bin/python bench/latency.py            # SQLite, 500 decisions
    .venv/bin/python bench/latency.py --db postgres
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import signoff
from backend import on_commit
from tests.support import databases
from tests.support.env import CLIENT_ID, pointed_at, server_env
from tests.support.factories import make_agent, refund_payload
from tests.support.servers import ApiServer, OidcProvider, free_port
from tests.support.webhook_receiver import Receiver

on_commit.install()  # in-process set-up commits as the API does


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, ms: list[float]) -> None:
    print(
        f"{name:<44} n={len(ms):<4} p50={pct(ms, 50):7.2f} ms  p99={pct(ms, 99):7.2f} ms  "
        f"max={max(ms):7.2f} ms  mean={statistics.fmean(ms):6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        choices=[1, 2],
        help="2: the agent waits on one API process while the reviewer decides on another",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="signoff-bench-"))
    db = databases.create(args.db, tmp)
    oidc = OidcProvider(free_port())
    server = ApiServer(server_env(db, oidc.issuer, SIGNOFF_LOG_LEVEL="ERROR"))
    other = ApiServer(server_env(db, oidc.issuer, SIGNOFF_LOG_LEVEL="ERROR")) if args.replicas == 2 else None
    receiver = Receiver()
    try:
        with pointed_at(db):
            agent = make_agent()
        lead = {
            "Authorization": f"Bearer {oidc.id_token('lead', ['reviewer', 'support_refunds'], CLIENT_ID)}"
        }
        admin = {"Authorization": f"Bearer {oidc.id_token('ada', ['admin'], CLIENT_ID)}"}
        http = httpx.Client(base_url=(other or server).url, timeout=30)  # where reviewers decide
        sdk = signoff.Client(server.url, agent.key)

        def decide_all(n: int, webhook: bool) -> tuple[list[float], list[float], list[float]]:
            to_wait, to_wait_after_ack, to_webhook = [], [], []
            for i in range(n):
                handle = sdk.propose("refund", refund_payload(150), summary=f"bench {i}")
                returned: dict[str, float] = {}

                def wait(h: signoff.ProposalHandle = handle, out: dict[str, float] = returned) -> None:
                    h.wait(30)
                    out["at"] = time.perf_counter()

                waiter = threading.Thread(target=wait)
                waiter.start()
                time.sleep(0.015)  # let the long-poll reach the server
                before = len(receiver.requests)
                sent, sent_mono = time.perf_counter(), time.monotonic()
                r = http.post(
                    f"/v1/proposals/{handle.id}/decisions", json={"verdict": "approve"}, headers=lead
                )
                acked = time.perf_counter()
                r.raise_for_status()
                waiter.join(30)
                to_wait.append((returned["at"] - sent) * 1000)
                to_wait_after_ack.append((returned["at"] - acked) * 1000)
                if webhook:
                    deadline = time.monotonic() + 30
                    while len(receiver.requests) == before and time.monotonic() < deadline:
                        time.sleep(0.0005)
                    to_webhook.append((receiver.requests[before].at - sent_mono) * 1000)  # monotonic stamps
            return to_wait, to_wait_after_ack, to_webhook

        # Phase 1: no webhook endpoint, so wait() is measured alone.
        to_wait, to_wait_after_ack, _ = decide_all(args.n, webhook=False)
        # Phase 2: a proposal.decided endpoint; the webhook's delivery is measured.
        hook = {"url": receiver.url, "event_types": ["proposal.decided"]}
        http.post("/v1/webhooks", json=hook, headers=admin).raise_for_status()
        wait_with_hooks, _, to_webhook = decide_all(args.n, webhook=True)

        print(
            f"Signoff latency bench: {args.n} decisions, {args.db}, "
            f"API {args.replicas} process(es), {os.cpu_count()} cores"
        )
        report("decision sent -> wait() returned", to_wait)
        report("decision acknowledged -> wait() returned", to_wait_after_ack)
        report("decision sent -> wait() returned (webhooks on)", wait_with_hooks)
        report("decision sent -> webhook received", to_webhook)
        verdict = "PASS" if pct(to_wait, 99) < 50 else "FAIL"
        print(f"target p99(decision -> wait()) < 50 ms: {verdict}")
    finally:
        receiver.close()
        if other is not None:
            other.close()
        server.close()
        oidc.close()
        databases.drop(db)


if __name__ == "__main__":
    main()
