"""Liveness, readiness and metrics: for load balancers and Prometheus."""

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.core import schema
from backend.core.db import get_engine
from backend.core.responses import JsonResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz() -> JsonResponse:
    """Ready when the database answers and its schema is at the code's migration head."""
    engine = get_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = schema.current_revision(engine), schema.head_revision()
    except SQLAlchemyError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if current != head:
        return JsonResponse(
            {"status": "unavailable", "database": "ok", "schema": current, "expected": head}, status_code=503
        )
    return JsonResponse({"status": "ok", "database": "ok", "schema": current})
