"""Stripe-style idempotency, in one place: fingerprints, stored answers, replay, purge.

Placing a proposal: an agent's ``Idempotency-Key`` is scoped to the agent and kept
``idempotency_ttl_hours``. Placement loads the answers stored under a batch's keys
(:func:`load_stored`) and answers each proposal through :class:`Answers`, in the same
transaction as the proposals they answer. Concurrent retries meet there: in one batch the
second replays the first; on SQLite, batches queue behind the write lock, so a later batch
finds the record; on PostgreSQL, a batch that races another replica fails at the primary
key once the other commits, and runs again, replaying the winner's stored response. A
request that fails validation is refused before its key is stored, so the key stays free.

Reporting an execution: the execution itself is the stored answer (one per proposal), and
a repeat is a replay when its fingerprint matches (:func:`same_request`).
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, select, tuple_
from sqlmodel import Session

from backend.core.errors import ApiError
from backend.core.settings import get_settings
from models.common import utcnow
from models.idempotency import IdempotencyRecord

MAX_KEY_LENGTH = 255

_STORED_COLUMNS = (
    IdempotencyRecord.agent_id,
    IdempotencyRecord.key,
    IdempotencyRecord.request_hash,
    IdempotencyRecord.status_code,
    IdempotencyRecord.response_body,
    IdempotencyRecord.created_at,
)
# The exact (agent, key) pairs, each one probe of the primary key, in the form each
# database serves from that index: PostgreSQL, given ``agent_id IN (...) AND key IN (...)``,
# probes every combination of agents and keys (80 for 8 agents and 10 keys); SQLite does
# not use the index for a row-value IN at all, and there the pairs are picked in Python.
_STORED = {
    "postgresql": select(*_STORED_COLUMNS).where(  # type: ignore[call-overload]
        tuple_(IdempotencyRecord.agent_id, IdempotencyRecord.key).in_(bindparam("pairs", expanding=True))
    ),
    "sqlite": select(*_STORED_COLUMNS).where(  # type: ignore[call-overload]
        IdempotencyRecord.agent_id.in_(bindparam("agents", expanding=True)),  # type: ignore[attr-defined]
        IdempotencyRecord.key.in_(bindparam("keys", expanding=True)),  # type: ignore[attr-defined]
    ),
}
_FORGET = delete(IdempotencyRecord).where(
    IdempotencyRecord.agent_id == bindparam("agent_id"), IdempotencyRecord.key == bindparam("key")
)


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


def body_hash(raw: bytes) -> str:
    """Fingerprint of a request body, insensitive to key order and whitespace."""
    try:
        canonical = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def fingerprint(value: Any) -> str:
    """Fingerprint of a parsed request (a model dumped to JSON types), as :func:`body_hash`."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def same_request(stored_hash: str, request_hash: str, conflict: Callable[[], ApiError]) -> None:
    """A repeat is a replay only when it is the same request; otherwise ``conflict()`` (409)."""
    if stored_hash != request_hash:
        raise conflict()


def _key_reused() -> ApiError:
    return ApiError(
        409,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request body.",
        param="Idempotency-Key",
    )


@dataclass(frozen=True)
class Stored:
    """A response kept under an idempotency key."""

    request_hash: str
    status: int
    body: dict[str, Any]


def load_stored(session: Session, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
    """What earlier requests stored under these (agent, idempotency key) pairs, in one query.
    A record past its time is deleted: its key is free again, as if never used."""
    found: dict[tuple[str, str], Stored] = {}
    if not pairs:
        return found
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    conn = session.connection()
    wanted = set(pairs)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        params: dict[str, Any] = {"pairs": sorted(wanted)}
    else:
        params = {"agents": sorted({a for a, _ in wanted}), "keys": sorted({k for _, k in wanted})}
    for row in conn.execute(_STORED[dialect], params):
        if (row.agent_id, row.key) not in wanted:
            continue
        if row.created_at < utcnow() - ttl:
            conn.execute(_FORGET, {"agent_id": row.agent_id, "key": row.key})
            continue
        found[(row.agent_id, row.key)] = Stored(
            row.request_hash, row.status_code, orjson.loads(row.response_body)
        )
    return found


@dataclass
class Answers:
    """The answers under one transaction's idempotency keys: those stored earlier and those
    given in this transaction, whose rows :attr:`rows` holds until they are written."""

    stored: dict[tuple[str, str], Stored] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def replay(self, agent_id: str, key: str, request_hash: str) -> Stored | None:
        """What this key already answered (here or in an earlier request), or None;
        409 ``idempotency_key_reused`` when the key came with another body."""
        stored = self.stored.get((agent_id, key))
        if stored is None:
            return None
        same_request(stored.request_hash, request_hash, _key_reused)
        return stored

    def remember(self, agent_id: str, key: str, request_hash: str, status: int, body: dict[str, Any]) -> None:
        self.stored[(agent_id, key)] = Stored(request_hash, status, body)
        self.rows.append(
            {
                "agent_id": agent_id,
                "key": key,
                "request_hash": request_hash,
                "status_code": status,
                "response_body": orjson.dumps(body, option=orjson.OPT_UTC_Z).decode(),
                "created_at": utcnow(),
            }
        )


def purge_expired(session: Session) -> int:
    cutoff = utcnow() - timedelta(hours=get_settings().idempotency_ttl_hours)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
