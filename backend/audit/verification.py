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
import itertools
import multiprocessing
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, select, text
from sqlmodel import Session

from backend.audit import checkpoints
from backend.audit.chain import GENESIS, canonical_at
from backend.core.canonical import sha256_hex
from backend.core.db import is_sqlite
from backend.core.keys import Keys, get_keys
from backend.core.settings import get_settings
from models.audit import AuditCheckpoint, AuditEvent, AuditHead, AuditVerification, CheckpointRef

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


# What a proposal's events recorded, per proposal id: a list, not a dict, as there are a
# million or more, pickled from the workers and merged: [which of payload and status an
# event set (bits), payload_sha256, status, decisions (verdict, reviewer sub, edited
# payload's SHA-256) or None, execution (status, result_sha256) or None].
Facts = dict[str, list[Any]]
_SEEN, _PAYLOAD, _STATUS, _DECISIONS, _EXECUTION = range(5)
_CREATED, _STATUS_SET = 1, 2


class Discrepancy(Exception):
    def __init__(self, reason: str, first_bad: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.first_bad = reason, first_bad


_SQLITE_SELECT = "SELECT seq, id, at, actor, action, subject, data, prev_hash, hash, mac FROM audit_events"
# PostgreSQL formats the time as the chain hashes it and hands the JSON over as text:
# psycopg's own JSON and timestamptz loading were two thirds of the walk's CPU.
_PG_SELECT = (
    """SELECT seq, id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), actor,"""
    " action, subject, data::text, prev_hash, hash, mac FROM audit_events"
)


def _sqlite_time(at: str) -> str:
    """A time SQLAlchemy did not write (another client's format): parsed the slow way."""
    parsed = datetime.fromisoformat(at)
    return canonical_at(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _range(select: str, after: int, upto: int | None, mark: str) -> tuple[str, tuple[int, ...]]:
    """The events in (after, upto], or all after `after` when `upto` is None."""
    if upto is None:
        return f"{select} WHERE seq > {mark} ORDER BY seq", (after,)
    return f"{select} WHERE seq > {mark} AND seq <= {mark} ORDER BY seq", (after, upto)


def _sqlite_rows(driver: Any, after: int, upto: int | None = None) -> Iterator[tuple[Any, ...]]:
    cur = driver.cursor()
    cur.execute(*_range(_SQLITE_SELECT, after, upto, "?"))
    loads = orjson.loads
    while rows := cur.fetchmany(_BATCH):
        for seq, ident, at, actor, action, subject, data, prev, digest, mac in rows:
            # Stored as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, always with microseconds).
            when = at.replace(" ", "T") + "Z" if len(at) == 26 else _sqlite_time(at)
            yield seq, ident, when, actor, action, subject, loads(data), prev, digest, mac
    cur.close()


def _postgres_rows(driver: Any, after: int, upto: int | None = None) -> Iterator[tuple[Any, ...]]:
    with driver.cursor(name="signoff_audit_verify") as cur:  # server-side: memory stays flat
        cur.itersize = _BATCH
        cur.execute(*_range(_PG_SELECT, after, upto, "%s"))
        loads = orjson.loads
        for seq, ident, at, actor, action, subject, data, prev, digest, mac in cur:
            yield seq, ident, at, actor, action, subject, loads(data), prev, digest, mac


def _rows(conn: Connection, after: int) -> Iterator[tuple[Any, ...]]:
    """Events after seq `after`, in chain order, straight off the driver's cursor: millions
    of rows are walked, and SQLAlchemy's per-value processing would be most of the time.
    Each row comes with its time already in the hashed form (``canonical_at``)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    if is_sqlite(str(conn.engine.url)):
        return _sqlite_rows(driver, after)
    return _postgres_rows(driver, after)


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

    mac_keys: dict[str, bytes]
    prev: str = GENESIS
    seq: int = 0
    checked: int = 0
    unkeyed: int = 0
    keyed: bool = False
    facts: Facts | None = None

    def run(self, rows: Iterable[Any]) -> None:
        prev, expected, facts = self.prev, self.seq + 1, self.facts
        mac_keys, keyed, unkeyed, checked = self.mac_keys, self.keyed, self.unkeyed, self.checked
        sha256, dumps, compare = hashlib.sha256, orjson.dumps, hmac.compare_digest
        # One keyed HMAC per key, copied per event: cheaper than keying a new one each time.
        keyed_macs = {kid: hmac.new(key, digestmod=hashlib.sha256) for kid, key in mac_keys.items()}
        for seq, ident, at, actor, action, subject, data, prev_hash, digest, mac in rows:
            self.checked = checked  # kept current: a discrepancy reports how far the walk got
            if seq != expected:
                raise _gap(ident, expected, seq)
            if prev_hash != prev:
                raise _unlinked(ident, seq)
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
                raise _no_mac(ident, seq)
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

    def join(self, span: "_Span") -> None:
        """Continue this walk with a range another process walked: first the checks one walk
        would have made at the range's first event (it follows on, it links to the event
        before, and a MAC there if the events before had one), then the range's own verdict."""
        if span.first is None:  # nothing in that range: the next range's first event shows it
            return
        seq, ident, prev_hash = span.first
        if seq != self.seq + 1:
            raise _gap(ident, self.seq + 1, seq)
        if prev_hash != self.prev:
            raise _unlinked(ident, seq)
        if span.bad is not None and span.checked == 0:  # its first event's hash or MAC
            raise Discrepancy(*span.bad)
        if self.keyed and not span.first_keyed:
            raise _no_mac(ident, seq)
        self.checked += span.checked
        if span.bad is not None:
            raise Discrepancy(*span.bad)
        if self.facts is not None and span.facts:
            if self.facts:
                _merge(self.facts, span.facts)
            else:  # the first range's: taken as it is
                self.facts = span.facts
        self.prev, self.seq = span.prev, span.seq
        self.unkeyed += 0 if self.keyed else span.unkeyed
        self.keyed = self.keyed or span.keyed


def _gap(ident: str, expected: int, seq: int) -> Discrepancy:
    return Discrepancy(f"event {ident}: sequence gap, expected {expected}, found {seq}", ident)


def _unlinked(ident: str, seq: int) -> Discrepancy:
    return Discrepancy(f"event {ident} (seq {seq}): prev_hash does not match the event before", ident)


def _no_mac(ident: str, seq: int) -> Discrepancy:
    return Discrepancy(f"event {ident} (seq {seq}): no MAC; not written with the audit key", ident)


@dataclass
class _Span:
    """What one process saw walking a range of seq: enough for the parent to join the ranges
    (:meth:`_Walk.join`) and name the first discrepancy exactly as one walk would."""

    first: tuple[int, str, str] | None  # seq, id and prev_hash of its first event
    first_keyed: bool
    seq: int  # its last event's seq and hash
    prev: str
    keyed: bool
    unkeyed: int  # its leading events without a MAC
    checked: int
    facts: Facts | None
    bad: tuple[str, str | None] | None  # reason, first_bad


# A walk is split into ranges of at least this many events (each costs a connection and
# a task), up to this many ranges per process.
_MIN_SPAN = 100_000
_SPANS_PER_WORKER = 4


def _walk_span(
    source: tuple[str, str], mac_keys: dict[str, bytes], after: int, upto: int | None, cross_check: bool
) -> _Span:
    """One process's part of a full walk: the events in (after, upto], on its own read-only
    connection. It takes its first event's seq and prev_hash as given (the parent checks
    them) and assumes the events before were all without a MAC (the parent checks that too)."""
    kind, where = source
    if kind == "sqlite":
        driver: Any = sqlite3.connect(where, uri=True)
        rows = _sqlite_rows(driver, after, upto)
    else:
        driver = psycopg.connect(where)
        driver.read_only = True
        rows = _postgres_rows(driver, after, upto)
    source_rows, rows = rows, _until_stopped(rows)
    try:
        first = next(rows, None)
        if first is None:
            return _Span(None, False, after, "", False, 0, 0, None, None)
        seq, prev_hash = first[0], first[7]
        walk = _Walk(
            mac_keys, prev=prev_hash, seq=seq - 1, unkeyed=seq - 1, facts={} if cross_check else None
        )
        bad = None
        try:
            walk.run(itertools.chain((first,), rows))
        except Discrepancy as exc:
            bad = (exc.reason, exc.first_bad)
        return _Span(
            (seq, first[1], prev_hash),
            bool(first[9]),
            walk.seq,
            walk.prev,
            walk.keyed,
            walk.unkeyed - (seq - 1),
            walk.checked,
            walk.facts,
            bad,
        )
    finally:
        rows.close()
        source_rows.close()
        driver.close()


def _source(conn: Connection) -> tuple[str, str] | None:
    """Where another process reads the same events: a read-only SQLite URI or a libpq
    conninfo. None for an in-memory SQLite database, which no other process can see."""
    url = conn.engine.url
    if is_sqlite(str(url)):
        if not url.database or url.database == ":memory:":
            return None
        return "sqlite", Path(url.database).resolve().as_uri() + "?mode=ro"
    return "postgres", url.set(drivername="postgresql").render_as_string(hide_password=False)


def _walk_all(conn: Connection, walk: _Walk, workers: int) -> None:
    """The whole chain: in this process, or split by seq over `workers` processes once it is
    large enough (hashing is CPU-bound and Python runs it on one core per process)."""
    top = conn.execute(text("SELECT max(seq) FROM audit_events")).scalar() or 0
    # More ranges than processes: the parent unpickles and joins the first ranges' facts
    # while the last are still walked, instead of all of them after the walk.
    spans = min(workers * _SPANS_PER_WORKER, top // _MIN_SPAN)
    source = _source(conn) if workers > 1 and spans > 1 else None
    if source is None:
        walk.run(_rows(conn, 0))
        return
    bounds = [top * i // spans for i in range(spans)]
    # The last range is open: events past the top when it was read (or past the head) are walked too.
    ranges = list(zip(bounds, [*bounds[1:], None], strict=True))
    # fork: the workers start with everything imported (spawn would import it all again);
    # they use nothing of the parent's but the code, and open their own connections.
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    # After a discrepancy the ranges still being walked stop at their next batch, and those not
    # started return at once: the pool is then closed and joined, never terminated (terminating
    # can kill a worker holding the task queue's lock and hang the pool's own threads for good).
    stop = context.Event()
    pool = context.Pool(min(workers, spans), initializer=_watch, initargs=(stop,))
    try:
        parts = [
            pool.apply_async(_walk_span, (source, walk.mac_keys, lo, hi, walk.facts is not None))
            for lo, hi in ranges
        ]
        for part in parts:
            walk.join(part.get())
    finally:
        stop.set()
        pool.close()
        pool.join()


_stop: Any = None  # in a worker: the parent's "stop walking" event


def _watch(stop: Any) -> None:
    global _stop
    _stop = stop


def _until_stopped(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The rows, until the parent says stop (checked once per batch of rows)."""
    for n, row in enumerate(rows):
        if n % _BATCH == 0 and _stop is not None and _stop.is_set():
            return
        yield row


def _note(facts: Facts, action: str, subject: str, data: dict[str, Any]) -> None:
    pid = subject.partition(":")[2]
    seen = facts.get(pid)
    if seen is None:
        seen = facts[pid] = [0, None, None, None, None]
    if action == "proposal.created":
        seen[_SEEN] |= _CREATED | _STATUS_SET
        seen[_PAYLOAD] = data.get("payload_sha256")
        seen[_STATUS] = data.get("status")
    elif action in ("proposal.decided", "decision.recorded"):
        reviewer = data.get("reviewer") or {}
        edited = data.get("edited_payload")
        _decided(
            seen, (data.get("verdict"), reviewer.get("sub"), None if edited is None else sha256_hex(edited))
        )
        if action == "proposal.decided":
            _set_status(seen, "approved" if data.get("verdict") == "approve" else "rejected")
    elif action == "proposal.executed":
        seen[_EXECUTION] = (data.get("status"), data.get("result_sha256"))
        _set_status(seen, "executed" if data.get("status") == "succeeded" else "failed")
    elif action == "proposal.expired":
        # ``on_expiry: reject`` ends it rejected, with a system decision (no reviewer, no
        # edit); events from before ``outcome`` existed mean expired.
        outcome = data.get("outcome") or "expired"
        _set_status(seen, outcome)
        if outcome == "rejected":
            _decided(seen, ("reject", None, None))
    elif action == "proposal.cancelled":
        _set_status(seen, "cancelled")


def _set_status(seen: list[Any], status: str) -> None:
    seen[_SEEN] |= _STATUS_SET
    seen[_STATUS] = status


def _decided(seen: list[Any], decision: tuple[Any, Any, Any]) -> None:
    if seen[_DECISIONS] is None:
        seen[_DECISIONS] = [decision]
    else:
        seen[_DECISIONS].append(decision)


def _merge(facts: Facts, later: Facts) -> None:
    """Add what a later range of the chain saw: as if one walk had gone on into it (a later
    event's payload, status and execution win; decisions add up)."""
    for pid, seen in later.items():
        mine = facts.get(pid)
        if mine is None:
            facts[pid] = seen
            continue
        bits = seen[_SEEN]
        if bits & _CREATED:
            mine[_PAYLOAD] = seen[_PAYLOAD]
        if bits & _STATUS_SET:
            mine[_STATUS] = seen[_STATUS]
        mine[_SEEN] |= bits
        if seen[_DECISIONS] is not None:
            earlier = mine[_DECISIONS]
            mine[_DECISIONS] = seen[_DECISIONS] if earlier is None else earlier + seen[_DECISIONS]
        if seen[_EXECUTION] is not None:
            mine[_EXECUTION] = seen[_EXECUTION]


def _payload_matches(recorded: str | None, payload: Any) -> bool:
    """The payload's SHA-256 as placement computes it (orjson, keys sorted) or as canonical
    JSON: the two agree for most payloads, and either is the one the event recorded. The
    canonical one is several times slower, so it is computed only when the first differs."""
    if hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest() == recorded:
        return True
    return sha256_hex(payload) == recorded


def _result_digest(result: Any) -> str:
    return hashlib.sha256(orjson.dumps(result)).hexdigest()


# The rows compared with the facts, in the order a discrepancy among them is named.
_PROPOSAL_ROWS = "SELECT id, status, payload{} FROM proposals ORDER BY id"
_DECISION_ROWS = "SELECT id, proposal_id, verdict, reviewer_sub, edited_payload{} FROM decisions ORDER BY id"
_EXECUTION_ROWS = "SELECT proposal_id, status, result{} FROM executions ORDER BY proposal_id"


@contextmanager
def _scan(conn: Connection, statement: str) -> Iterator[Iterator[tuple[Any, ...]]]:
    """A table's rows straight off the driver's cursor, as the walk reads the events: JSON
    as text (decoded with orjson, as the engine does), without SQLAlchemy's per-row work.
    On PostgreSQL a server-side cursor in the session's transaction, so memory stays flat."""
    driver = conn.connection.driver_connection
    assert driver is not None
    sqlite = is_sqlite(str(conn.engine.url))
    cur = driver.cursor() if sqlite else driver.cursor(name="signoff_audit_cross_check")
    try:
        cur.execute(statement.format("" if sqlite else "::text"))
        # In batches: psycopg's server-side cursor costs a Python call per row iterated.
        yield itertools.chain.from_iterable(iter(lambda: cur.fetchmany(_BATCH), []))
    finally:
        cur.close()


def _json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def _cross_check(conn: Connection, facts: Facts) -> None:
    """Every proposal, decision and execution row against what its events recorded."""
    get = facts.get
    with _scan(conn, _PROPOSAL_ROWS) as rows:
        for pid, status, payload in rows:
            seen = get(pid)
            if seen is None or not seen[_SEEN] & _CREATED:
                raise Discrepancy(f"proposal {pid}: no proposal.created event records it", f"proposal:{pid}")
            if not _payload_matches(seen[_PAYLOAD], _json(payload)):
                raise Discrepancy(
                    f"proposal {pid}: its payload does not match the one its proposal.created event recorded",
                    f"proposal:{pid}",
                )
            if seen[_STATUS] != status:
                raise Discrepancy(
                    f"proposal {pid}: its status is {status} but its events say {seen[_STATUS]}",
                    f"proposal:{pid}",
                )
    with _scan(conn, _DECISION_ROWS) as rows:
        for did, pid, verdict, sub, edited in rows:
            seen = get(pid)
            recorded = seen[_DECISIONS] if seen is not None else None
            edit = None if edited is None or edited == "null" else sha256_hex(orjson.loads(edited))
            if recorded is None or (verdict, sub, edit) not in recorded:
                raise Discrepancy(
                    f"decision {did} (proposal {pid}): {verdict} by {sub or 'policy or system'} does not "
                    "match any proposal.decided, decision.recorded or proposal.expired event",
                    f"decision:{did}",
                )
    # Each execution row matches at most one proposal's facts (one row per proposal), so
    # when as many rows match as facts record an execution, none is missing.
    matched = 0
    with _scan(conn, _EXECUTION_ROWS) as rows:
        for pid, status, result in rows:
            seen = get(pid)
            recorded = seen[_EXECUTION] if seen is not None else None
            if recorded != (status, _result_digest(_json(result))):
                raise Discrepancy(
                    f"execution of proposal {pid}: its status or result does not match its "
                    "proposal.executed event",
                    f"execution:{pid}",
                )
            matched += 1
    if matched == sum(1 for seen in facts.values() if seen[_EXECUTION] is not None):
        return
    with _scan(conn, _EXECUTION_ROWS) as rows:
        rowed = {pid for pid, _, _ in rows}
    for pid, seen in facts.items():  # the first the events named
        if seen[_EXECUTION] is not None and pid not in rowed:
            raise Discrepancy(
                f"execution of proposal {pid}: the event records one but the row is missing",
                f"execution:{pid}",
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


def verify_full(
    session: Session, cross_check: bool = True, sink: str | None = None, workers: int = 1
) -> AuditVerification:
    """Everything from genesis; names the first discrepancy. With ``workers`` > 1 a large
    chain is walked by that many processes (the CLI passes the machine's cores; the API's
    background job keeps to its thread)."""
    keys, conn = get_keys(), session.connection()
    head = session.get(AuditHead, 1)
    walk = _Walk(keys.mac_keys, facts={} if cross_check else None)
    cp = checkpoints.latest(session)
    try:
        _walk_all(conn, walk, workers)
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
    walk = _Walk(keys.mac_keys)
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
