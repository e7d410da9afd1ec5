"""Per-agent rate limits: a flood from one key gets 429 with Retry-After, another agent is
served as usual, and the limit holds across replicas (two workers on one database)."""

import math
import threading
import time
import uuid

import httpx

from backend.core.ratelimit import Counter
from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.factories import make_agent, refund_proposal
from tests.support.servers import OidcProvider, api_server

LIMIT = 10


def test_a_flood_from_one_key_is_limited(db: Database, oidc: OidcProvider) -> None:
    flooder, neighbour = make_agent(), make_agent()
    # Two worker processes: on PostgreSQL they share the count; SQLite keeps it per process.
    workers = 2 if db.kind == "postgres" else 1
    env = server_env(db, oidc.issuer, SIGNOFF_AGENT_RATE_LIMIT=str(LIMIT))
    with api_server(env, workers=workers) as server:
        flood: list[httpx.Response] = []
        calm: list[httpx.Response] = []
        lock = threading.Lock()
        stop = threading.Event()

        def flood_once() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                while not stop.is_set():
                    r = client.get("/v1/proposals/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=flooder.headers)
                    with lock:
                        flood.append(r)

        threads = [threading.Thread(target=flood_once) for _ in range(6)]
        started = time.monotonic()
        for t in threads:
            t.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(LIMIT):  # well under the limit, while the flood goes on
                calm.append(client.post("/v1/proposals", json=refund_proposal(), headers=neighbour.headers))
                time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    assert [r.status_code for r in calm] == [201] * LIMIT
    limited = [r for r in flood if r.status_code == 429]
    assert limited, "the flood was never limited"
    for r in limited:
        assert 1 <= int(r.headers["Retry-After"]) <= 1
        assert (r.json()["error"]["type"], r.json()["error"]["code"]) == ("rate_limit_error", "rate_limited")
    served = [r for r in flood if r.status_code != 429]
    assert {r.status_code for r in served} <= {404}
    # However slow the machine, no window let more than the limit through, across workers.
    assert len(served) <= LIMIT * (math.ceil(elapsed) + 1)


def test_a_late_request_never_restarts_the_current_windows_count(db: Database) -> None:
    """Requests reach the counter through a thread pool, not always in the order they were
    stamped: one stamped just before a window ended, counted after the next began, must not
    reset the new window's count (it used to, letting the rest of that window through)."""
    counter = Counter(window_seconds=1)
    key = f"test-{uuid.uuid4().hex}"
    base = float(int(time.time()) + 1000)
    counter.hit(key, base + 0.1)  # the first of the new window
    counter.hit(key, base - 0.01)  # late: stamped in the window before
    counts = [counter.hit(key, base + 0.2) for _ in range(LIMIT)]
    # However the late one is counted, the new window's own hits are all counted.
    assert counts[-1] >= LIMIT + 1
