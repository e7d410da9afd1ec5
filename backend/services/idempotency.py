"""Stripe-style idempotency keys, scoped per agent.

The key's row is inserted before the proposal, in the same transaction. Concurrent
retries therefore meet at the primary key: SQLite queues them behind the write lock,
PostgreSQL blocks the second insert until the first commits and then fails it, and the
loser replays the winner's stored response. A request that fails validation raises
before its key is claimed, so it is never stored under the key.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete
from sqlmodel import Session

from backend.errors import ApiError
from backend.settings import get_settings
from models.common import utcnow
from models.idempotency import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotencyOutcome:
    status_code: int
    body: dict[str, Any]


def check_key_format(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            param="Idempotency-Key",
        )
    return key


def claim_key(session: Session, agent_id: str, key: str, request_hash: str) -> IdempotencyOutcome | None:
    """Replay what this key already answered, refuse a different body, or claim the key."""
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    record = session.get(IdempotencyRecord, (agent_id, key))
    if record is not None and record.created_at < utcnow() - ttl:
        session.delete(record)
        session.flush()
        record = None
    if record is not None:
        if record.request_hash != request_hash:
            raise ApiError(
                409,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request body.",
                param="Idempotency-Key",
            )
        return IdempotencyOutcome(record.status_code, orjson.loads(record.response_body))
    session.add(
        IdempotencyRecord(
            agent_id=agent_id, key=key, request_hash=request_hash, status_code=0, response_body=""
        )
    )
    session.flush()
    return None


def store_response(session: Session, agent_id: str, key: str, status: int, body: dict[str, Any]) -> None:
    record = session.get(IdempotencyRecord, (agent_id, key))
    assert record is not None
    record.status_code = status
    record.response_body = orjson.dumps(body, option=orjson.OPT_UTC_Z).decode()
    session.add(record)


def purge_expired(session: Session) -> int:
    cutoff = utcnow() - timedelta(hours=get_settings().idempotency_ttl_hours)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
