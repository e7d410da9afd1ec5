"""API keys: minted once, stored as hashes, checked on every agent request."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, select

from backend.audit import chain as audit
from backend.controls import kill_switch
from backend.core.errors import ApiError, not_found
from backend.core.settings import get_settings
from models.agents import Agent, ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from models.audit import AuditAction
from models.common import utcnow
from models.system import SystemFlag

PREFIX = "so_"
_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="signoff"'}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, agent: Agent, spec: ApiKeyCreate, actor: str) -> ApiKeyCreated:
    key = PREFIX + secrets.token_urlsafe(32)
    days = spec.expires_in_days or get_settings().api_key_days
    row = ApiKey(
        agent_id=agent.id,
        key_hash=hash_key(key),
        prefix=key[:10],
        name=spec.name,
        scopes=spec.scopes,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        AuditAction.KEY_CREATED,
        f"agent:{agent.id}",
        {"key_id": row.id, "prefix": row.prefix, "expires_at": row.expires_at, "scopes": row.scopes},
    )
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row, from_attributes=True).model_dump(), key=key)


def revoke_key(session: Session, agent: Agent, key_id: str, actor: str) -> ApiKeyPublic:
    row = session.get(ApiKey, key_id)
    if row is None or row.agent_id != agent.id:
        raise not_found("API key", key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(session, actor, AuditAction.KEY_REVOKED, f"agent:{agent.id}", {"key_id": row.id})
    return ApiKeyPublic.model_validate(row, from_attributes=True)


def list_keys(session: Session, agent: Agent) -> list[ApiKeyPublic]:
    rows = session.exec(
        select(ApiKey).where(ApiKey.agent_id == agent.id).order_by(ApiKey.created_at)  # type: ignore[arg-type]
    ).all()
    return [ApiKeyPublic.model_validate(r, from_attributes=True) for r in rows]


# Built once: this runs on every agent request.
_BY_HASH = (
    select(ApiKey, Agent)
    .join(Agent, Agent.id == ApiKey.agent_id)  # type: ignore[arg-type]
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


def invalid_key() -> ApiError:
    return ApiError(401, "invalid_api_key", "The API key is not valid.", headers=_UNAUTHENTICATED)


def key_refusal(revoked_at: datetime | None, expires_at: datetime | None) -> ApiError | None:
    """Why a key that exists may not be used now (revoked, expired), or None."""
    if revoked_at is not None:
        return ApiError(401, "api_key_revoked", "The API key was revoked.", headers=_UNAUTHENTICATED)
    if expires_at is not None and expires_at <= utcnow():
        return ApiError(401, "api_key_expired", "The API key has expired.", headers=_UNAUTHENTICATED)
    return None


def authenticate(session: Session, key: str) -> tuple[Agent, ApiKey]:
    """The agent behind a key, or 401 saying why (never which part of the key was wrong)."""
    if not key.startswith(PREFIX):
        raise invalid_key()
    found = session.execute(_BY_HASH, {"key_hash": hash_key(key)}).first()
    if found is None:
        raise invalid_key()
    row, agent = found
    refusal = key_refusal(row.revoked_at, row.expires_at)
    if refusal is not None:
        raise refusal
    return agent, row


@dataclass(frozen=True)
class KeyRef:
    """An API key that was valid a moment ago, and its agent."""

    agent_id: str
    key_id: str
    expires_at: datetime | None


# Placing a proposal re-checks its key inside the write transaction (revoked, expired,
# agent suspended), so the check before it may be a moment stale: a recently valid key
# skips a database round trip per request. Refusals are never remembered.
RECENT_SECONDS = 30.0
_MAX_RECENT = 10_000
_recent: dict[str, tuple[KeyRef, float]] = {}


def recently_valid(key_hash: str) -> KeyRef | None:
    hit = _recent.get(key_hash)
    if hit is None or hit[1] < time.monotonic():
        return None
    ref = hit[0]
    if ref.expires_at is not None and ref.expires_at <= utcnow():
        return None
    return ref


_KILL_SWITCH = select(SystemFlag.value).where(SystemFlag.name == kill_switch.FLAG).scalar_subquery()
# The key a request was let in with, its agent and the kill switch, in one statement.
_BY_ID = (
    select(ApiKey.revoked_at, ApiKey.expires_at, Agent, _KILL_SWITCH)
    .join(Agent, Agent.id == ApiKey.agent_id)  # type: ignore[arg-type]
    .where(ApiKey.id == bindparam("key_id"))
)


def recheck(session: Session, ref: KeyRef) -> tuple[Agent, bool]:
    """Check for certain, inside the request's own transaction, a key let in on a moment-old
    answer (:func:`recently_valid`): 401 if it has been revoked or has expired since. Returns
    its agent and whether the kill switch is engaged, for ``admission.refusal``."""
    found = session.execute(_BY_ID, {"key_id": ref.key_id}).first()
    if found is None:
        raise invalid_key()
    revoked_at, expires_at, agent, kill_switch = found
    refusal = key_refusal(revoked_at, expires_at)
    if refusal is not None:
        raise refusal
    return agent, bool(kill_switch)


def remember_valid(key_hash: str, ref: KeyRef) -> None:
    if len(_recent) >= _MAX_RECENT:
        _recent.clear()
    _recent[key_hash] = (ref, time.monotonic() + RECENT_SECONDS)
