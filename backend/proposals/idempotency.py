"""Stripe-style idempotency keys, scoped per agent: the key's format and the purge.

The keys are read and written by placement (``batch.Batch``), in the same transaction as
the proposal they answer. Concurrent retries meet there: in one batch the second replays
the first; on SQLite, batches queue behind the write lock, so a later batch finds the
record; on PostgreSQL, a batch that races another replica fails at the primary key once
the other commits, and runs again, replaying the winner's stored response. A request
that fails validation is refused before its key is stored, so the key stays free.
"""

from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session

from backend.core.errors import ApiError
from backend.core.settings import get_settings
from models.common import utcnow
from models.idempotency import IdempotencyRecord

MAX_KEY_LENGTH = 255


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


def purge_expired(session: Session) -> int:
    cutoff = utcnow() - timedelta(hours=get_settings().idempotency_ttl_hours)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
