"""Stripe-style idempotency keys, scoped per agent.

The key's row is written in the same transaction as the proposal it answers. Concurrent
retries therefore meet at the primary key: SQLite queues them behind the write lock (so
the second finds the first's record), PostgreSQL fails the second insert once the first
commits, and the loser's retry replays the winner's stored response. A request that fails validation raises
before its key is claimed, so it is never stored under the key.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select
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


_FIND = select(
    IdempotencyRecord.request_hash,  # type: ignore[call-overload]
    IdempotencyRecord.status_code,
    IdempotencyRecord.response_body,
    IdempotencyRecord.created_at,
).where(IdempotencyRecord.agent_id == bindparam("agent_id"), IdempotencyRecord.key == bindparam("key"))
_FORGET = delete(IdempotencyRecord).where(
    IdempotencyRecord.agent_id == bindparam("agent_id"), IdempotencyRecord.key == bindparam("key")
)
_STORE = insert(IdempotencyRecord)


def find_replay(session: Session, agent_id: str, key: str, request_hash: str) -> IdempotencyOutcome | None:
    """What this key already answered, or None; a different body under the key is a 409."""
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    conn = session.connection()
    row = conn.execute(_FIND, {"agent_id": agent_id, "key": key}).first()
    if row is None:
        return None
    if row.created_at < utcnow() - ttl:
        conn.execute(_FORGET, {"agent_id": agent_id, "key": key})
        return None
    if row.request_hash != request_hash:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
            param="Idempotency-Key",
        )
    return IdempotencyOutcome(row.status_code, orjson.loads(row.response_body))


def store_response(
    session: Session, agent_id: str, key: str, request_hash: str, status: int, body: dict[str, Any]
) -> None:
    """Keep the response under the key, in the same transaction as what it created.

    Two concurrent first requests with one key both get here; the primary key lets one
    commit and fails the other, whose retry then finds and replays the winner's response.
    """
    session.connection().execute(
        _STORE,
        {
            "agent_id": agent_id,
            "key": key,
            "request_hash": request_hash,
            "status_code": status,
            "response_body": orjson.dumps(body, option=orjson.OPT_UTC_Z).decode(),
            "created_at": utcnow(),
        },
    )


def purge_expired(session: Session) -> int:
    cutoff = utcnow() - timedelta(hours=get_settings().idempotency_ttl_hours)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
