"""The tamper-evident audit trail: recording events and chaining them at commit.

Services call :func:`record` inside their transaction; the events are chained and
written just before that transaction commits (the ``audit`` step of
``backend/on_commit.py``), so a state change and its audit event land together or not at
all. The chain's tip lives in ``audit_head``; updating that row takes its lock, which
serialises appends across API replicas on PostgreSQL (SQLite's ``BEGIN IMMEDIATE``
already does). The events just written are left on the session as :class:`WrittenEvent`
for the steps after this one (webhooks).
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from backend.core import commit
from backend.core.bulk import fetch_later, insert_rows, pipelined
from backend.core.db import transaction
from models.audit import AuditAction, AuditEvent, AuditHead, AuditVerification
from models.common import new_id, utcnow

GENESIS = "0" * 64
_PENDING = "signoff_audit_pending"
_WRITTEN = "signoff_audit_written"


@dataclass
class _Pending:
    actor: str
    action: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WrittenEvent:
    """An audit event as this transaction wrote it, for the commit steps that follow."""

    id: str
    seq: int
    at: datetime
    actor: str
    action: AuditAction
    subject: str
    data: dict[str, Any]

    @property
    def subject_kind(self) -> str:
        """``proposal`` for ``proposal:01J...``; the subject itself when it has no id."""
        return self.subject.partition(":")[0]

    @property
    def subject_id(self) -> str | None:
        kind, sep, ident = self.subject.partition(":")
        return ident if sep else None


class CommitStepsMissing(RuntimeError):
    """Raised when a state change is recorded in a process that never installed the commit
    steps: its audit event would silently never be written."""


def record(
    session: Session, actor: str, action: AuditAction, subject: str = "", data: dict[str, Any] | None = None
) -> None:
    """Queue one audit event; it is written when ``session`` commits."""
    if not commit.active:  # an attribute, not a call: this runs for every event
        raise CommitStepsMissing("Call backend.on_commit.install() before changing state.")
    name = action.value if isinstance(action, AuditAction) else AuditAction(action).value
    session.info.setdefault(_PENDING, []).append(_Pending(actor, name, subject, data or {}))


def canonical_at(at: datetime) -> str:
    """``2026-11-26T15:00:00.123456Z``; isoformat is several times faster than strftime."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def compute_hash(
    prev_hash: str,
    *,
    seq: int,
    id: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any],
) -> str:
    body = {
        "seq": seq,
        "id": id,
        "at": canonical_at(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "data": data,
    }
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


_LOCK_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_HEAD = "signoff_audit_head"
_MOVE_HEAD = (
    update(AuditHead).where(AuditHead.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def lock_head(session: OrmSession) -> None:
    """Take the chain's head now rather than at commit, for a caller about to commit its
    events: inside :func:`backend.core.bulk.pipelined` the lock then rides on that round trip.
    Its answer is read when the events are written; the lock is held until commit either way.
    Does nothing when no event is pending (there would be nothing to chain)."""
    if session.info.get(_PENDING):
        session.info[_HEAD] = fetch_later(session.connection(), _LOCK_HEAD)


def _locked_head(session: OrmSession, conn: Connection) -> tuple[int, str]:
    taken = session.info.pop(_HEAD, None)
    head = taken() if taken is not None else conn.execute(_LOCK_HEAD).one()
    return head[0], head[1]


def _write_pending(session: OrmSession) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return
    session.flush()
    # Core statements on the session's connection: this runs on every write, so skip the ORM layer.
    conn = session.connection()
    # Take the tip's row lock (no-op contention on SQLite, where the write lock is held),
    # unless lock_head took it earlier in this transaction.
    seq, prev = _locked_head(session, conn)
    rows = []
    for item in pending:
        seq += 1
        at = utcnow()
        # JSON round trip so the hash covers exactly what the database will hand back.
        data = orjson.loads(orjson.dumps(item.data, option=orjson.OPT_UTC_Z))
        ident = new_id()
        digest = compute_hash(
            prev,
            seq=seq,
            id=ident,
            at=at,
            actor=item.actor,
            action=item.action,
            subject=item.subject,
            data=data,
        )
        rows.append(
            {
                "seq": seq,
                "id": ident,
                "at": at,
                "actor": item.actor,
                "action": item.action,
                "subject": item.subject,
                "data": data,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    with pipelined(conn):  # both writes in one round trip on PostgreSQL
        insert_rows(conn, AuditEvent.__table__, rows)  # type: ignore[attr-defined]
        conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    session.info[_WRITTEN] = rows


def written(session: OrmSession) -> list[WrittenEvent]:
    """The events this transaction wrote at commit, for the commit steps after ``audit``."""
    return [
        WrittenEvent(
            id=r["id"],
            seq=r["seq"],
            at=r["at"],
            actor=r["actor"],
            action=AuditAction(r["action"]),
            subject=r["subject"],
            data=r["data"],
        )
        for r in session.info.get(_WRITTEN, ())
    ]


def _forget_written(session: OrmSession) -> None:
    session.info.pop(_WRITTEN, None)


def _drop_pending(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_HEAD, None)
    session.info.pop(_WRITTEN, None)


COMMIT_STEP = commit.Step(
    "audit", before_commit=_write_pending, after_commit=_forget_written, after_rollback=_drop_pending
)


def record_now(
    actor: str, action: AuditAction, subject: str = "", data: dict[str, Any] | None = None
) -> None:
    """Write one event in a transaction of its own (refusals that store nothing else)."""
    with transaction() as session:
        record(session, actor, action, subject, data)


def iter_events(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    """All events in chain order, a batch at a time so memory stays flat."""
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session) -> AuditVerification:
    """Walk the chain from genesis and name the first event that does not hold."""
    prev, expected_seq, count = GENESIS, 1, 0
    for ev in iter_events(session):
        count += 1
        if ev.seq != expected_seq:
            return AuditVerification(
                ok=False,
                events=count,
                first_bad=ev.id,
                reason=f"sequence gap: expected {expected_seq}, found {ev.seq}",
            )
        if ev.prev_hash != prev:
            return AuditVerification(
                ok=False,
                events=count,
                first_bad=ev.id,
                reason="prev_hash does not match the event before it",
            )
        digest = compute_hash(
            prev,
            seq=ev.seq,
            id=ev.id,
            at=ev.at,
            actor=ev.actor,
            action=ev.action,
            subject=ev.subject,
            data=ev.data,
        )
        if digest != ev.hash:
            return AuditVerification(
                ok=False,
                events=count,
                first_bad=ev.id,
                reason="hash does not match the event's content",
            )
        prev, expected_seq = ev.hash, expected_seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != prev):
        return AuditVerification(
            ok=False,
            events=count,
            first_bad=None,
            reason=f"chain ends at event {count} but the head records {head.seq}: events were removed",
        )
    return AuditVerification(ok=True, events=count)
