"""A database outage: 503 with Retry-After while it lasts, nothing acknowledged lost, and
recovery without restarting the API. Readiness fails when writes fail."""

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg

from backend.core import schema
from backend.core.db import make_engine
from tests.support.databases import Database
from tests.support.env import pointed_at, server_env
from tests.support.factories import make_agent, refund_proposal
from tests.support.pgcluster import Cluster
from tests.support.servers import OidcProvider, api_server


def test_database_stopped_mid_burst(oidc: OidcProvider) -> None:
    cluster = Cluster()
    try:
        db = Database("postgres", cluster.url, "postgres")
        engine = make_engine(db.url)
        schema.upgrade(engine)
        engine.dispose()
        with pointed_at(db):
            agent = make_agent()
        acknowledged: list[str] = []
        answers: list[httpx.Response] = []
        lock = threading.Lock()
        stop = threading.Event()
        with api_server(server_env(db, oidc.issuer)) as server:

            def burst() -> None:
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    while not stop.is_set():
                        r = client.post("/v1/proposals", json=refund_proposal(), headers=agent.headers)
                        with lock:
                            answers.append(r)
                            if r.status_code == 201:
                                acknowledged.append(r.json()["id"])

            threads = [threading.Thread(target=burst) for _ in range(4)]
            for t in threads:
                t.start()
            _until(lambda: len(acknowledged) >= 20)
            cluster.stop()
            down_from = len(answers)
            _until(lambda: sum(r.status_code == 503 for r in answers[down_from:]) >= 10)
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            assert ready.status_code == 503
            cluster.start()
            up_from = len(answers)
            _until(lambda: sum(r.status_code == 201 for r in answers[up_from:]) >= 20)
            stop.set()
            for t in threads:
                t.join()
            assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
        outage = [r for r in answers if r.status_code == 503]
        assert outage, "no request saw the outage"
        for r in outage:
            assert r.headers["Retry-After"].isdigit()
            error = r.json()["error"]
            assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
        assert {r.status_code for r in answers} <= {201, 503}
        with psycopg.connect(cluster.url) as conn:
            rows = conn.execute("SELECT id FROM proposals WHERE agent_id = %s", (agent.id,))
            stored = {row[0] for row in rows}
        assert set(acknowledged) <= stored
    finally:
        cluster.close()


def _until(check: object, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_readiness_fails_when_the_database_takes_no_writes(database: Database, oidc: OidcProvider) -> None:
    """Reads still work but writes fail (on PostgreSQL the database turned read-only, as a
    demoted primary leaves it; on SQLite a writer that never lets go, so every write times
    out): /readyz must fail all the same."""
    with api_server(server_env(database, oidc.issuer)) as server:
        assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
        with _read_only(database):
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            assert ready.status_code == 503 and ready.json()["database"] == "not_writable"
            assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200


@contextlib.contextmanager
def _read_only(db: Database) -> Iterator[None]:
    if db.kind == "postgres":
        admin = db.url.rsplit("/", 1)[0] + "/postgres"
        terminate = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()"
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = on')
            conn.execute(terminate, (db.name,))
        try:
            yield
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{db.name}" RESET default_transaction_read_only')
                conn.execute(terminate, (db.name,))
        return
    path = db.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # a writer that never lets go: every other write waits, then fails
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback()
