"""Reading the audit trail: newest first, keyset on the chain sequence."""

from typing import Any

from sqlmodel import Session, select

from backend.core.errors import ApiError
from models.audit import AuditEvent, AuditEventPublic


def list_events(
    session: Session,
    cursor: str | None = None,
    limit: int = 100,
    subject: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    stmt = select(AuditEvent)
    if cursor:
        if not cursor.isdigit():
            raise ApiError(400, "invalid_cursor", "The cursor is not one this API issued.", param="cursor")
        stmt = stmt.where(AuditEvent.seq < int(cursor))
    if subject:
        stmt = stmt.where(AuditEvent.subject == subject)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    rows = list(session.exec(stmt.order_by(AuditEvent.seq.desc()).limit(limit + 1)).all())  # type: ignore[attr-defined]
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [
            AuditEventPublic.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows
        ],
        "next_cursor": str(rows[-1].seq) if more and rows else None,
    }
