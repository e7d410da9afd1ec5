"""Liveness, readiness and metrics: for load balancers and Prometheus."""

import json
import sqlite3

from fastapi import APIRouter
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from backend.core import schema
from backend.core.db import get_engine, read_only
from backend.core.responses import JsonResponse
from models.common import utcnow

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


_PROBE = "readyz_probe"
_PROBE_TIMEOUT_S = 2.0
_UPSERT = (
    "INSERT INTO system_flags (name, value, updated_at, updated_by)"
    " VALUES (:n, :v, CURRENT_TIMESTAMP, 'system')"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


def _write_probe() -> None:
    """A real write, committed: a database that answers reads but cannot write (disk full,
    read-only, a demoted primary, a writer that never lets go) must take the instance out
    of rotation, and say so within seconds."""
    engine = get_engine()
    now = json.dumps(utcnow().isoformat())
    if engine.dialect.name == "sqlite":
        # A connection of its own, outside the pool and the in-process write queue, with a
        # short busy timeout instead of the 30 s that requests wait.
        conn = sqlite3.connect(engine.url.database or "", timeout=_PROBE_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_UPSERT.replace(":v", "?").replace(":n", "?"), (_PROBE, now))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    with engine.begin() as conn:
        conn.execute(text(_UPSERT), {"n": _PROBE, "v": now})


def _ping(engine: Engine) -> None:
    """``SELECT 1``; a pooled connection the server dropped (a restart, a terminated
    backend) is thrown away by the pool, and one fresh connection is tried before giving up."""
    for attempt in range(2):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except DBAPIError as exc:
            if attempt or not exc.connection_invalidated:
                raise


@router.get("/readyz")
def readyz() -> JsonResponse:
    """Ready when the database answers, takes a write, and its schema is at the code's
    migration head."""
    engine = read_only(get_engine())
    try:
        _ping(engine)
        current, head = schema.current_revision(engine), schema.head_revision()
    except SQLAlchemyError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    try:
        _write_probe()
    except (SQLAlchemyError, sqlite3.Error) as exc:
        body = {"status": "unavailable", "database": "not_writable", "error": type(exc).__name__}
        return JsonResponse(body, status_code=503)
    if current != head:
        return JsonResponse(
            {"status": "unavailable", "database": "ok", "schema": current, "expected": head}, status_code=503
        )
    return JsonResponse({"status": "ok", "database": "ok", "schema": current})
