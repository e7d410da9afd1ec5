"""The tamper-evident audit trail: recording events and chaining them at commit.

Services call :func:`record` inside their transaction; the events are chained and
written just before that transaction commits (the ``audit`` step of
``backend/on_commit.py``), so a state change and its audit event land together or not at
all. The chain's tip lives in ``audit_head``; updating that row takes its lock, which
serialises appends across API replicas on PostgreSQL (SQLite's ``BEGIN IMMEDIATE``
already does). The events just written are left on the session as :class:`WrittenEvent`
for the steps after this one (webhooks).

The hash chain alone needs no key: anyone who can write the table can recompute it. So each
event also carries a keyed MAC over its hash (``mac``), and the head a MAC over its position
(``head_mac``), made with the audit key from ``backend/core/keys.py``, which the database
never holds. Verifying is in ``backend/audit/verification.py``.
"""

import hashlib
import hmac
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
from backend.core.keys import get_keys
from models.audit import AuditAction, AuditEvent, AuditHead
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
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"), mac=bindparam("new_mac"))
)


def event_mac(kid: str, key: bytes, digest: str) -> str:
    """``kid:hex``: the keyed MAC over one event's chain hash (which covers the chain before it)."""
    return kid + ":" + hmac.digest(key, digest.encode(), "sha256").hex()


def head_mac(kid: str, key: bytes, seq: int, digest: str) -> str:
    """The keyed MAC over the head's position: moving the head back needs the key too."""
    return kid + ":" + hmac.digest(key, f"head:{seq}:{digest}".encode(), "sha256").hex()


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
    keys = get_keys()
    kid, key = keys.mac_kid, keys.mac_key
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
                "mac": event_mac(kid, key, digest),
            }
        )
        prev = digest
    with pipelined(conn):  # both writes in one round trip on PostgreSQL
        insert_rows(conn, AuditEvent.__table__, rows)  # type: ignore[attr-defined]
        conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev, "new_mac": head_mac(kid, key, seq, prev)})
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
