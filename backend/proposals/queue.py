"""The reviewers' queue: keyset pagination, oldest deadline first."""

import base64
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_
from sqlmodel import Session, select

from backend.agents import lookup
from backend.core.errors import ApiError
from backend.proposals.views import proposal_summary
from models.agents import Agent
from models.common import utcnow
from models.proposals import Proposal, Status

MAX_LIMIT = 200


def encode_cursor(expires_at: datetime, ident: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([expires_at.isoformat(), ident])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, ident = orjson.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(at), str(ident)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ApiError(
            400, "invalid_cursor", "The cursor is not one this API issued.", param="cursor"
        ) from exc


def list_queue(
    session: Session,
    status: Status = Status.pending,
    action_type: str | None = None,
    agent: str | None = None,
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    stmt = select(Proposal).where(Proposal.status == status.value)
    if status == Status.pending:
        # Overdue ones are expired by the sweeper; never offer them for review meanwhile.
        stmt = stmt.where(Proposal.expires_at > utcnow())
    if action_type:
        stmt = stmt.where(Proposal.action_type == action_type)
    if agent:
        stmt = stmt.where(Proposal.agent_id == lookup.id_of(session, agent))
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Proposal.summary.ilike(f"%{escaped}%", escape="\\"))  # type: ignore[attr-defined]
    if cursor:
        at, ident = decode_cursor(cursor)
        stmt = stmt.where(
            or_(Proposal.expires_at > at, and_(Proposal.expires_at == at, Proposal.id > ident))  # type: ignore[arg-type]
        )
    stmt = stmt.order_by(Proposal.expires_at, Proposal.id).limit(limit + 1)  # type: ignore[arg-type]
    rows = list(session.exec(stmt).all())
    more = len(rows) > limit
    rows = rows[:limit]
    names = _agent_names(session, {r.agent_id for r in rows})
    now = utcnow()
    items = [proposal_summary(r, names.get(r.agent_id), now) for r in rows]
    next_cursor = encode_cursor(rows[-1].expires_at, rows[-1].id) if more and rows else None
    return {"items": items, "next_cursor": next_cursor}


def _agent_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.exec(select(Agent.id, Agent.name).where(Agent.id.in_(ids))).all()  # type: ignore[attr-defined]
    return {i: n for i, n in rows}
