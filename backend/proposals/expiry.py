"""The sweeper: reminders and escalations on silence, then expiry past the deadline.

Per action type, a pending proposal is reminded after ``remind_after_seconds`` and
escalated after ``escalate_after_seconds`` (assigned to the group ``escalate_to``), each
once, each audited (``proposal.reminded``, ``proposal.escalated``, which are also webhook
events); at its deadline it ends as the action type's ``on_expiry`` says
(``transitions.expire``).
"""

import threading
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlmodel import Session

from backend.audit import chain as audit
from backend.core.db import read_session, transaction
from backend.proposals import idempotency, transitions
from models.action_types import ActionType
from models.audit import AuditAction
from models.common import utcnow
from models.proposals import Proposal, Status

log = structlog.get_logger()
BATCH = 500


def sweep_once() -> int:
    """Expire one batch of overdue proposals; returns how many."""
    with transaction() as session:
        now = utcnow()
        overdue = session.execute(
            select(Proposal.id, Proposal.expires_at)
            .where(Proposal.status == Status.pending.value, Proposal.expires_at <= now)
            .order_by(Proposal.expires_at)
            .limit(BATCH)
        ).all()
        count = 0
        for pid, expires_at in overdue:
            if transitions.expire(session, pid, expires_at, at=now):
                count += 1
        return count


def escalate_once() -> int:
    """Remind and escalate the proposals whose action type's silence limits have passed;
    returns how many events that wrote."""
    with read_session() as session:  # most installs set none: no write lock taken then
        types = session.execute(
            select(
                ActionType.name,
                ActionType.remind_after_seconds,
                ActionType.escalate_after_seconds,
                ActionType.escalate_to,
            ).where(
                (ActionType.remind_after_seconds.is_not(None))  # type: ignore[union-attr]
                | (ActionType.escalate_after_seconds.is_not(None))  # type: ignore[union-attr]
            )
        ).all()
    if not types:
        return 0
    with transaction() as session:
        now = utcnow()
        count = 0
        for name, remind_after, escalate_after, escalate_to in types:
            if remind_after:
                reminded = AuditAction.PROPOSAL_REMINDED
                count += _mark(session, name, now, remind_after, "reminded_at", reminded, {})
            if escalate_after:
                group = f"group:{escalate_to}" if escalate_to else None
                values = {"assigned_to": group} if group else {}
                escalated = AuditAction.PROPOSAL_ESCALATED
                data = {"to": group}
                count += _mark(session, name, now, escalate_after, "escalated_at", escalated, data, values)
        return count


def _mark(
    session: Session,
    action_type: str,
    now: datetime,
    after_seconds: int,
    column: str,
    action: AuditAction,
    data: dict[str, Any],
    values: dict[str, Any] | None = None,
) -> int:
    """Set ``column`` once on each pending proposal silent for ``after_seconds``, audited.
    ``updated_at`` stays: a reminder must not make a reviewer's approval in flight retry."""
    field = getattr(Proposal, column)
    due = session.execute(
        select(Proposal.id, Proposal.assigned_to)
        .where(
            Proposal.action_type == action_type,  # type: ignore[arg-type]
            Proposal.status == Status.pending.value,  # type: ignore[arg-type]
            field.is_(None),
            Proposal.created_at <= now - timedelta(seconds=after_seconds),  # type: ignore[operator]
            Proposal.expires_at > now,  # type: ignore[operator]
        )
        .order_by(Proposal.created_at)
        .limit(BATCH)
    ).all()
    count = 0
    for pid, assigned_to in due:
        moved = session.execute(
            update(Proposal)
            .where(Proposal.id == pid, Proposal.status == Status.pending.value, field.is_(None))  # type: ignore[arg-type]
            .values({column: now, **(values or {})})
        )
        if moved.rowcount:  # type: ignore[attr-defined]
            event = {"after_seconds": after_seconds, "assigned_to": assigned_to, **data}
            audit.record(session, "system", action, f"proposal:{pid}", event)
            count += 1
    return count


class Sweeper(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="signoff-expiry", daemon=True)
        self.interval = interval
        self._stop = threading.Event()
        self._ticks = 0

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                escalate_once()
                while sweep_once() == BATCH:
                    pass
                self._ticks += 1
                if self._ticks % 720 == 0:
                    with transaction() as session:
                        idempotency.purge_expired(session)
            except Exception:
                log.exception("expiry_sweep_failed")

    def stop(self) -> None:
        self._stop.set()
