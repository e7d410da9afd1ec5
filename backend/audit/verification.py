"""Verifying the audit trail: the chain, its keyed MACs, its signed checkpoints, and the
rows (proposals, decisions, executions) against the events that recorded them.

Two depths:

- :func:`verify_incremental` (``GET /v1/audit/verify``, the Audit page): the latest
  signed checkpoint is checked, then only the events after it. Cheap at any size.
- :func:`verify_full` (``signoff audit verify --full`` and the background job): every event
  from genesis, every checkpoint, the head, the database's own guards, and each proposal,
  decision and execution compared with its events. It names the first discrepancy.

Someone with write access to the database but not the audit key can neither append an
event nor rewrite one (its MAC would not match), nor move the head back after deleting the
tail (the head's MAC covers its position), nor forge or move a checkpoint (signed).
"""

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import Connection, select, text
from sqlmodel import Session

from backend.audit import checkpoints
from backend.audit.chain import GENESIS, canonical_at
from backend.core.canonical import sha256_hex
from backend.core.db import is_sqlite
from backend.core.keys import Keys, get_keys
from backend.core.settings import get_settings
from models.audit import AuditCheckpoint, AuditEvent, AuditHead, AuditVerification, CheckpointRef
from models.proposals import Decision, Execution, Proposal

_BATCH = 20_000
# The events that create a proposal, decision or execution row or change a proposal's
# status. The other actions on a proposal (``decision.refused``, ``proposal.claimed``,
# ``proposal.released``, ``proposal.assigned``, ``proposal.reminded``,
# ``proposal.escalated``, ``policy.evaluated``) write no such row and move no status, so
# the cross-check has nothing to compare them with.
_CROSS_CHECKED = {
    "proposal.created",
    "proposal.decided",
    # An approval short of the quorum: a decision row, the proposal stays pending.
    "decision.recorded",
    "proposal.executed",
    "proposal.expired",
    "proposal.cancelled",
}


class Discrepancy(Exception):
    def __init__(self, reason: str, first_bad: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.first_bad = reason, first_bad


_SELECT = "SELECT seq, id, at, actor, action, subject, data, prev_hash, hash, mac FROM audit_events"


def _sqlite_time(at: str) -> str:
    """A time SQLAlchemy did not write (another client's format): parsed the slow way."""
    parsed = datetime.fromisoformat(at)
    return canonical_at(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _rows(conn: Connection, after: int) -> Iterator[tuple[Any, ...]]:
    """Events after seq `after`, in chain order, straight off the driver's cursor: millions
    of rows are walked, and SQLAlchemy's per-value processing would be most of the time.
    Each row comes with its time already in the hashed form (``canonical_at``)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    if is_sqlite(str(conn.engine.url)):
        cur = driver.cursor()
        cur.execute(f"{_SELECT} WHERE seq > ? ORDER BY seq", (after,))
        loads = orjson.loads
        while rows := cur.fetchmany(_BATCH):
            for seq, ident, at, actor, action, subject, data, prev, digest, mac in rows:
                # Stored as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, always with microseconds).
                when = at.replace(" ", "T") + "Z" if len(at) == 26 else _sqlite_time(at)
                yield seq, ident, when, actor, action, subject, loads(data), prev, digest, mac
        cur.close()
        return
    with driver.cursor(name="signoff_audit_verify") as cur:  # server-side: memory stays flat
        set_json_loads(orjson.loads, cur)
        cur.itersize = _BATCH
        cur.execute(f"{_SELECT} WHERE seq > %s ORDER BY seq", (after,))
        for seq, ident, at, actor, action, subject, data, prev, digest, mac in cur:
            yield seq, ident, canonical_at(at), actor, action, subject, data, prev, digest, mac


def _mac_ok(keys: Keys, mac: str | None, message: bytes) -> bool:
    if not mac:
        return False
    kid, _, value = mac.partition(":")
    key = keys.mac_keys.get(kid)
    if key is None:
        return False
    return hmac.compare_digest(hmac.digest(key, message, "sha256").hex(), value)


@dataclass
class _Walk:
    """A walk along the chain: where it is, and what it saw for the cross-check.

    Events written before the trail was keyed (by a version without the audit key) have no
    MAC; they are accepted as a prefix from genesis only, and counted as ``unkeyed``."""

    keys: Keys
    prev: str = GENESIS
    seq: int = 0
    checked: int = 0
    unkeyed: int = 0
    keyed: bool = False
    facts: dict[str, dict[str, Any]] | None = None

    def run(self, rows: Iterable[Any]) -> None:
        prev, expected, facts = self.prev, self.seq + 1, self.facts
        mac_keys, keyed, unkeyed, checked = self.keys.mac_keys, self.keyed, self.unkeyed, self.checked
        sha256, dumps, compare = hashlib.sha256, orjson.dumps, hmac.compare_digest
        # One keyed HMAC per key, copied per event: cheaper than keying a new one each time.
        keyed_macs = {kid: hmac.new(key, digestmod=hashlib.sha256) for kid, key in mac_keys.items()}
        for seq, ident, at, actor, action, subject, data, prev_hash, digest, mac in rows:
            self.checked = checked  # kept current: a discrepancy reports how far the walk got
            if seq != expected:
                raise Discrepancy(f"event {ident}: sequence gap, expected {expected}, found {seq}", ident)
            if prev_hash != prev:
                raise Discrepancy(
                    f"event {ident} (seq {seq}): prev_hash does not match the event before", ident
                )
            body = {
                "seq": seq,
                "id": ident,
                "at": at,
                "actor": actor,
                "action": action,
                "subject": subject,
                "data": data,
            }
            if sha256(prev.encode() + dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest() != digest:
                raise Discrepancy(
                    f"event {ident} (seq {seq}): hash does not match the event's content", ident
                )
            if mac:
                kid, _, value = mac.partition(":")
                base = keyed_macs.get(kid)
                if base is None:
                    ok = False
                else:
                    h = base.copy()
                    h.update(digest.encode())
                    ok = compare(h.hexdigest(), value)
                if not ok:
                    raise Discrepancy(
                        f"event {ident} (seq {seq}): MAC does not match; not written with the audit key",
                        ident,
                    )
                keyed = True
            elif keyed or seq != unkeyed + 1:
                raise Discrepancy(f"event {ident} (seq {seq}): no MAC; not written with the audit key", ident)
            else:
                unkeyed += 1
            if facts is not None and action in _CROSS_CHECKED:
                _note(facts, action, subject, data)
            checked += 1
            prev, expected = digest, expected + 1
        self.prev, self.seq, self.keyed, self.unkeyed, self.checked = (
            prev,
            expected - 1,
            keyed,
            unkeyed,
            checked,
        )


def _note(facts: dict[str, dict[str, Any]], action: str, subject: str, data: dict[str, Any]) -> None:
    pid = subject.partition(":")[2]
    seen = facts.setdefault(pid, {})
    if action == "proposal.created":
        seen["payload_sha256"] = data.get("payload_sha256")
        seen["status"] = data.get("status")
    elif action in ("proposal.decided", "decision.recorded"):
        reviewer = data.get("reviewer") or {}
        edited = data.get("edited_payload")
        seen.setdefault("decisions", []).append(
            (data.get("verdict"), reviewer.get("sub"), None if edited is None else sha256_hex(edited))
        )
        if action == "proposal.decided":
            seen["status"] = "approved" if data.get("verdict") == "approve" else "rejected"
    elif action == "proposal.executed":
        seen["execution"] = (data.get("status"), data.get("result_sha256"))
        seen["status"] = "executed" if data.get("status") == "succeeded" else "failed"
    elif action == "proposal.expired":
        # ``on_expiry: reject`` ends it rejected, with a system decision (no reviewer, no
        # edit); events from before ``outcome`` existed mean expired.
        outcome = data.get("outcome") or "expired"
        seen["status"] = outcome
        if outcome == "rejected":
            seen.setdefault("decisions", []).append(("reject", None, None))
    elif action == "proposal.cancelled":
        seen["status"] = "cancelled"


def _payload_digests(payload: Any) -> tuple[str, str]:
    """The payload's SHA-256 as placement computed it (orjson, keys sorted) and as canonical
    JSON: the two agree for most payloads, and either is the one the event recorded."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest(), sha256_hex(payload)


def _result_digest(result: Any) -> str:
    return hashlib.sha256(orjson.dumps(result)).hexdigest()


def _keyset(conn: Connection, columns: tuple[Any, ...], key: Any) -> Iterator[Any]:
    last = ""
    while True:
        rows = conn.execute(select(*columns).where(key > last).order_by(key).limit(_BATCH)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _cross_check(conn: Connection, facts: dict[str, dict[str, Any]]) -> None:
    """Every proposal, decision and execution row against what its events recorded."""
    for pid, status, payload in _keyset(conn, (Proposal.id, Proposal.status, Proposal.payload), Proposal.id):
        seen = facts.get(pid)
        if seen is None or "payload_sha256" not in seen:
            raise Discrepancy(f"proposal {pid}: no proposal.created event records it", f"proposal:{pid}")
        if seen["payload_sha256"] not in _payload_digests(payload):
            raise Discrepancy(
                f"proposal {pid}: its payload does not match the one its proposal.created event recorded",
                f"proposal:{pid}",
            )
        if seen.get("status") != status:
            raise Discrepancy(
                f"proposal {pid}: its status is {status} but its events say {seen.get('status')}",
                f"proposal:{pid}",
            )
    columns = (
        Decision.id,
        Decision.proposal_id,
        Decision.verdict,
        Decision.reviewer_sub,
        Decision.edited_payload,
    )
    for did, pid, verdict, sub, edited in _keyset(conn, columns, Decision.id):
        recorded = (facts.get(pid) or {}).get("decisions", [])
        if (verdict, sub, None if edited is None else sha256_hex(edited)) not in recorded:
            raise Discrepancy(
                f"decision {did} (proposal {pid}): {verdict} by {sub or 'policy or system'} does not "
                "match any proposal.decided, decision.recorded or proposal.expired event",
                f"decision:{did}",
            )
    executed = {pid: seen["execution"] for pid, seen in facts.items() if "execution" in seen}
    for pid, status, result in _keyset(
        conn, (Execution.proposal_id, Execution.status, Execution.result), Execution.proposal_id
    ):
        recorded = executed.pop(pid, None)
        if recorded != (status, _result_digest(result)):
            raise Discrepancy(
                f"execution of proposal {pid}: its status or result does not match its proposal.executed "
                "event",
                f"execution:{pid}",
            )
    for pid in executed:
        raise Discrepancy(
            f"execution of proposal {pid}: the event records one but the row is missing", f"execution:{pid}"
        )


_EXPECTED_TRIGGERS = {
    "postgresql": ("audit_events_no_update", "audit_events_no_truncate"),
    "sqlite": ("audit_events_no_update", "audit_events_no_delete"),
}


def _check_guards(conn: Connection) -> None:
    """The database's own refusals (append-only triggers) must be in place and enabled."""
    if is_sqlite(str(conn.engine.url)):
        names = {
            r[0]: "O" for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        }
        expected = _EXPECTED_TRIGGERS["sqlite"]
    else:
        names = dict(
            conn.execute(
                text("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass")
            ).all()
        )
        expected = _EXPECTED_TRIGGERS["postgresql"]
    for name in expected:
        state = names.get(name)
        if state is None:
            raise Discrepancy(f"the append-only trigger {name} on audit_events is missing", f"trigger:{name}")
        if state == "D":
            raise Discrepancy(
                f"the append-only trigger {name} on audit_events is disabled", f"trigger:{name}"
            )


def _check_head(keys: Keys, head: AuditHead | None, walk: _Walk) -> None:
    seq, digest = (head.seq, head.hash) if head else (0, GENESIS)
    if (seq, digest) != (walk.seq, walk.prev):
        raise Discrepancy(
            f"the chain ends at event {walk.seq} but the head records {seq}: events were removed or added"
        )
    if walk.keyed and not _mac_ok(keys, head.mac if head else "", f"head:{seq}:{digest}".encode()):
        raise Discrepancy(
            f"the head (seq {seq}) has no valid MAC: it was moved without the audit key", "audit_head"
        )


def _checkpoint_claims(keys: Keys, cp: AuditCheckpoint) -> checkpoints.Claims:
    try:
        claims = checkpoints.open_token(keys, cp.token)
    except ValueError as exc:
        raise Discrepancy(f"checkpoint {cp.seq}: {exc}", f"checkpoint:{cp.seq}") from None
    if (claims.seq, claims.hash) != (cp.seq, cp.hash):
        raise Discrepancy(
            f"checkpoint {cp.seq}: its row differs from what was signed", f"checkpoint:{cp.seq}"
        )
    return claims


def _event_hash(conn: Connection, seq: int) -> tuple[str, str | None] | None:
    row = conn.execute(select(AuditEvent.hash, AuditEvent.mac).where(AuditEvent.seq == seq)).first()  # type: ignore[arg-type]
    return (row[0], row[1]) if row else None


def _anchor(conn: Connection, claims: checkpoints.Claims, what: str) -> tuple[str, str | None]:
    found = _event_hash(conn, claims.seq)
    if found is None:
        raise Discrepancy(
            f"{what} signed the chain at seq {claims.seq}, which is no longer there: events were removed",
            what,
        )
    if found[0] != claims.hash:
        raise Discrepancy(
            f"{what} signed a different event at seq {claims.seq}: the chain was rewritten", what
        )
    return found


def _result(
    ok: bool,
    head: AuditHead | None,
    walk: _Walk,
    full: bool,
    cp: AuditCheckpoint | None,
    bad: Discrepancy | None = None,
) -> AuditVerification:
    return AuditVerification(
        ok=ok,
        events=head.seq if head else 0,
        checked=walk.checked,
        full=full,
        first_bad=bad.first_bad if bad else None,
        reason=bad.reason if bad else None,
        checkpoint=CheckpointRef(seq=cp.seq, at=cp.at) if cp else None,
        unkeyed=walk.unkeyed,
    )


def verify_full(session: Session, cross_check: bool = True, sink: str | None = None) -> AuditVerification:
    """Everything from genesis; names the first discrepancy."""
    keys, conn = get_keys(), session.connection()
    head = session.get(AuditHead, 1)
    walk = _Walk(keys, facts={} if cross_check else None)
    cp = checkpoints.latest(session)
    try:
        walk.run(_rows(conn, 0))
        _check_head(keys, head, walk)
        for each in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)):  # type: ignore[arg-type]
            _anchor(conn, _checkpoint_claims(keys, each), f"checkpoint:{each.seq}")
        target = get_settings().audit_sink if sink is None else sink
        anchored = checkpoints.sink_latest(target) if target else None
        if anchored is not None:
            _anchor(conn, anchored, "the external sink's last checkpoint")
        if walk.facts is not None:
            _cross_check(conn, walk.facts)
        # Last: a tampered row is named before the disabled guard that let it through.
        _check_guards(conn)
    except Discrepancy as bad:
        return _result(False, head, walk, True, cp, bad)
    return _result(True, head, walk, True, cp)


def verify_incremental(session: Session) -> AuditVerification:
    """The latest checkpoint, then the events after it: what the Audit page asks."""
    keys, conn = get_keys(), session.connection()
    head = session.get(AuditHead, 1)
    cp = checkpoints.latest(session)
    walk = _Walk(keys)
    try:
        if cp is not None:
            claims = _checkpoint_claims(keys, cp)
            digest, mac = _anchor(conn, claims, f"checkpoint:{cp.seq}")
            if mac and not _mac_ok(keys, mac, digest.encode()):
                raise Discrepancy(f"event at seq {cp.seq}: MAC does not match", f"checkpoint:{cp.seq}")
            walk.prev, walk.seq, walk.keyed = digest, cp.seq, bool(mac)
            walk.unkeyed = cp.seq if not mac else 0
        walk.run(_rows(conn, walk.seq))
        _check_head(keys, head, walk)
    except Discrepancy as bad:
        return _result(False, head, walk, False, cp, bad)
    return _result(True, head, walk, False, cp)
