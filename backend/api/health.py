"""Liveness, readiness and metrics: for load balancers and Prometheus."""

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.core import schema
from backend.core.db import get_engine, transaction
from backend.core.responses import JsonResponse
from models.common import utcnow
from models.system import SystemFlag

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


_PROBE = "readyz_probe"


def _write_probe() -> None:
    """A real write, committed: a database that answers reads but cannot write (disk full,
    read-only, a replica promoted away) must take the instance out of rotation."""
    now = utcnow()
    with transaction() as session:
        flag = session.get(SystemFlag, _PROBE)
        if flag is None:
            session.add(SystemFlag(name=_PROBE, value=now.isoformat(), updated_at=now))
        else:
            flag.value, flag.updated_at = now.isoformat(), now
            session.add(flag)


@router.get("/readyz")
def readyz() -> JsonResponse:
    """Ready when the database answers, takes a write, and its schema is at the code's
    migration head."""
    engine = get_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = schema.current_revision(engine), schema.head_revision()
    except SQLAlchemyError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    try:
        _write_probe()
    except SQLAlchemyError as exc:
        body = {"status": "unavailable", "database": "not_writable", "error": type(exc).__name__}
        return JsonResponse(body, status_code=503)
    if current != head:
        return JsonResponse(
            {"status": "unavailable", "database": "ok", "schema": current, "expected": head}, status_code=503
        )
    return JsonResponse({"status": "ok", "database": "ok", "schema": current})
