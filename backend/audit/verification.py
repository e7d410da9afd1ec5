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

import gc
import hashlib
import hmac
import itertools
import marshal
import multiprocessing
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, select, text
from sqlmodel import Session

from backend.audit import checkpoints, cross_check
from backend.audit.chain import GENESIS, canonical_at
from backend.core.db import is_sqlite
from backend.core.keys import Keys, get_keys
from backend.core.settings import get_settings
from models.audit import AuditCheckpoint, AuditEvent, AuditHead, AuditVerification, CheckpointRef

_BATCH = cross_check.BATCH
Discrepancy = cross_check.Discrepancy


# SQLite turns the time SQLAlchemy stored ("YYYY-MM-DD HH:MM:SS.ffffff", UTC, always with
# microseconds) into the hashed form itself; any other text comes marked with "!", for
# Python to parse the slow way.
_SQLITE_SELECT = (
    "SELECT seq, id, CASE WHEN length(at) = 26 THEN replace(at, ' ', 'T') || 'Z' ELSE '!' || at END,"
    " actor, action, subject, data, prev_hash, hash, mac FROM audit_events"
)
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


def _stopped() -> bool:
    """Whether the parent said stop (in a worker; checked once per batch of rows)."""
    return _stop is not None and _stop.is_set()


# The events come in batches of rows as the driver returned them, with the data still JSON
# text: the walk's loop over them is the whole verify's hot path, run millions of times, so
# no generator sits between it and the driver's rows.
Batches = Iterator[list[tuple[Any, ...]]]


def _sqlite_batches(driver: Any, after: int, upto: int | None = None) -> Batches:
    cur = driver.cursor()
    cur.execute(*_range(_SQLITE_SELECT, after, upto, "?"))
    while not _stopped() and (rows := cur.fetchmany(_BATCH)):
        if any(row[2][0] == "!" for row in rows):  # rare: a time another client wrote
            rows = [(*r[:2], _sqlite_time(r[2][1:]), *r[3:]) if r[2][0] == "!" else r for r in rows]
        yield rows
    cur.close()


def _postgres_batches(driver: Any, after: int, upto: int | None = None) -> Batches:
    # Fetched in this thread: a thread fetching ahead was slower (it holds the GIL while the
    # driver builds the rows, the bulk of fetching).
    with driver.cursor(name="signoff_audit_verify") as cur:  # server-side: memory stays flat
        cur.execute(*_range(_PG_SELECT, after, upto, "%s"))
        while not _stopped() and (rows := cur.fetchmany(_BATCH)):
            yield rows


def _batches(conn: Connection, after: int) -> Batches:
    """Events after seq `after`, in chain order, straight off the driver's cursor: millions
    of rows are walked, and SQLAlchemy's per-value processing would be most of the time.
    Each row comes with its time already in the hashed form (``canonical_at``)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    if is_sqlite(str(conn.engine.url)):
        return _sqlite_batches(driver, after)
    return _postgres_batches(driver, after)


def _mac_states(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) as two SHA-256 states keyed once: the MAC of a message is
    ``outer.copy()`` fed ``inner.copy()`` fed the message. The same value as ``hmac.new``
    (tests/audit/test_verification_parts.py) for half the time per event: copying an
    ``hmac`` object costs more than the two hashes."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def _mac_hex(states: tuple[Any, Any], message: bytes) -> str:
    inner, outer = states[0].copy(), states[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    return str(outer.hexdigest())


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
    facts: cross_check.Facts | None = None

    def run(self, batches: Iterable[list[tuple[Any, ...]]]) -> None:
        prev, expected, facts = self.prev, self.seq + 1, self.facts
        keyed, unkeyed, checked = self.keyed, self.unkeyed, self.checked
        sha256, dumps, loads, compare = hashlib.sha256, orjson.dumps, orjson.loads, hmac.compare_digest
        note, checked_actions, sort_keys = cross_check.note, cross_check.CROSS_CHECKED, orjson.OPT_SORT_KEYS
        states = {kid: _mac_states(key) for kid, key in self.mac_keys.items()}
        try:
            for batch in batches:
                for seq, ident, at, actor, action, subject, text, prev_hash, digest, mac in batch:
                    if seq != expected:
                        raise _gap(ident, expected, seq)
                    if prev_hash != prev:
                        raise _unlinked(ident, seq)
                    data = loads(text)
                    body = {
                        "seq": seq,
                        "id": ident,
                        "at": at,
                        "actor": actor,
                        "action": action,
                        "subject": subject,
                        "data": data,
                    }
                    if sha256(prev.encode() + dumps(body, option=sort_keys)).hexdigest() != digest:
                        raise Discrepancy(
                            f"event {ident} (seq {seq}): hash does not match the event's content", ident
                        )
                    if mac:
                        kid, _, value = mac.partition(":")
                        state = states.get(kid)
                        if state is None or not compare(_mac_hex(state, digest.encode()), value):
                            raise Discrepancy(
                                f"event {ident} (seq {seq}): MAC does not match; not written with the "
                                "audit key",
                                ident,
                            )
                        keyed = True
                    elif keyed or seq != unkeyed + 1:
                        raise _no_mac(ident, seq)
                    else:
                        unkeyed += 1
                    if facts is not None and action in checked_actions:
                        note(facts, action, subject, data)
                    checked += 1
                    prev, expected = digest, expected + 1
        except Discrepancy:
            self.checked = checked  # the result says how far the walk got
            raise
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
                cross_check.merge(self.facts, span.facts)
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
    facts: cross_check.Facts | None  # None when cross-checked by bucket, or not at all
    bad: tuple[str, str | None] | None  # reason, first_bad


# A walk is split into ranges of at least this many events (each costs a connection and
# a task), up to this many ranges per process.
_MIN_SPAN = 100_000
_SPANS_PER_WORKER = 4


_SQLITE_MMAP = 1 << 32


def _connect(source: tuple[str, str]) -> Any:
    """A worker's own read-only connection to the database `source` names."""
    kind, where = source
    if kind == "sqlite":
        driver = sqlite3.connect(where, uri=True)
        # Pages mapped rather than read: a walk reads the whole file once, and copying each
        # page out of the kernel was a tenth of a worker's time.
        driver.execute(f"PRAGMA mmap_size = {_SQLITE_MMAP}")
        return driver
    driver = psycopg.connect(where)
    driver.read_only = True
    return driver


def _walk_span(
    source: tuple[str, str],
    mac_keys: dict[str, bytes],
    after: int,
    upto: int | None,
    store: "_FactStore | None",
    index: int,
) -> _Span:
    """One process's part of a full walk: the events in (after, upto], on its own read-only
    connection. It takes its first event's seq and prev_hash as given (the parent checks
    them) and assumes the events before were all without a MAC (the parent checks that too).
    With a `store`, the facts it gathered are left there by bucket, for the cross-check."""
    driver = _connect(source)
    batches = (_sqlite_batches if source[0] == "sqlite" else _postgres_batches)(driver, after, upto)
    try:
        opening = next(batches, None)
        if not opening:
            if store is not None:
                store.put(index, {})
            return _Span(None, False, after, "", False, 0, 0, None, None)
        first = opening[0]
        seq, prev_hash = first[0], first[7]
        walk = _Walk(mac_keys, prev=prev_hash, seq=seq - 1, unkeyed=seq - 1, facts={} if store else None)
        bad = None
        try:
            walk.run(itertools.chain((opening,), batches))
        except Discrepancy as exc:
            bad = (exc.reason, exc.first_bad)
        if store is not None and walk.facts is not None and bad is None:
            store.put(index, walk.facts)
        return _Span(
            (seq, first[1], prev_hash),
            bool(first[9]),
            walk.seq,
            walk.prev,
            walk.keyed,
            walk.unkeyed - (seq - 1),
            walk.checked,
            None,
            bad,
        )
    finally:
        batches.close()
        driver.close()


@dataclass
class _FactStore:
    """The facts of a parallel walk, on disk by (range, bucket): each range's walker writes
    its facts split by proposal id, and each bucket's checker reads its part of every range,
    in chain order. Neither the parent nor any one process holds all the facts (a million
    proposals are about a gigabyte of them), and the buckets are checked side by side. The
    directory is private to this user (mkdtemp) and removed after the check."""

    directory: str
    buckets: list[cross_check.Bucket]

    def path(self, index: int, bucket: int) -> Path:
        # marshal, not pickle: the facts are plain dicts, lists, tuples and strings, which it
        # writes seven times faster; both read only what this verify wrote.
        return Path(self.directory) / f"{index}-{bucket}.marshal"

    def put(self, index: int, facts: cross_check.Facts) -> None:
        for bucket, part in enumerate(cross_check.split(facts, self.buckets)):
            self.path(index, bucket).write_bytes(marshal.dumps(part))

    def take(self, ranges: int, bucket: int) -> cross_check.Facts:
        facts: cross_check.Facts = {}
        for index in range(ranges):
            # Whole files: marshal.load on a file reads object by object, seven times slower.
            later = marshal.loads(self.path(index, bucket).read_bytes())  # noqa: S302 (ours, in a 0700 directory)
            if facts:
                cross_check.merge(facts, later)
            else:
                facts = later
        return facts


def _check_bucket(
    source: tuple[str, str], store: _FactStore, ranges: int, bucket: int
) -> cross_check.Found | None:
    """One bucket's cross-check, in a worker: its facts from every range, its rows."""
    if _stopped():
        return None
    facts = store.take(ranges, bucket)
    driver = _connect(source)
    try:
        return cross_check.check(driver, source[0] == "sqlite", facts, store.buckets[bucket])
    finally:
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


# Cross-check buckets per process: more than one, so a bucket with more rows than the rest
# does not leave the other processes idle at the end.
_BUCKETS_PER_WORKER = 2


class _Parallel:
    """A full verify's work spread over processes: the walk by ranges of seq, then the
    cross-check by buckets of proposal id (hashing and comparing are CPU-bound, and Python
    runs them on one core per process). Used only once the chain is large enough."""

    def __init__(self, conn: Connection, workers: int, cross_checked: bool) -> None:
        self.conn, self.workers, self.cross_checked = conn, workers, cross_checked
        self.source, self.store = (_source(conn) if workers > 1 else None), None
        self.ranges: list[tuple[int, int | None]] = []
        if self.source is None:
            return
        top = conn.execute(text("SELECT max(seq) FROM audit_events")).scalar() or 0
        spans = min(workers * _SPANS_PER_WORKER, top // _MIN_SPAN)
        if spans < 2:
            self.source = None
            return
        bounds = [top * i // spans for i in range(spans)]
        # The last range is open: events past the top when it was read (or past the head) are walked too.
        self.ranges = list(zip(bounds, [*bounds[1:], None], strict=True))

    def __enter__(self) -> "_Parallel | None":
        if self.source is None:
            return None
        # fork: the workers start with everything imported (spawn would import it all again);
        # they use nothing of the parent's but the code, and open their own connections.
        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        )
        if self.cross_checked:
            # Before the pool: a failed query leaves no processes and no directory behind.
            buckets = self._buckets()
            self.store = _FactStore(tempfile.mkdtemp(prefix="signoff-verify-"), buckets)
        self.stop = context.Event()
        try:
            processes = min(self.workers, len(self.ranges))
            self.pool = context.Pool(processes, initializer=_watch, initargs=(self.stop,))
        except BaseException:
            if self.store is not None:
                shutil.rmtree(self.store.directory, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.source is None:
            return
        # After a discrepancy the ranges still being walked stop at their next batch, and those
        # not started return at once: the pool is then closed and joined, never terminated
        # (terminating can kill a worker holding the task queue's lock and hang the pool's own
        # threads for good).
        self.stop.set()
        self.pool.close()
        self.pool.join()
        if self.store is not None:
            shutil.rmtree(self.store.directory, ignore_errors=True)

    def _buckets(self) -> list[cross_check.Bucket]:
        lowest, highest = self.conn.execute(text("SELECT min(id), max(id) FROM proposals")).one()
        return cross_check.bucket_bounds(lowest, highest, self.workers * _BUCKETS_PER_WORKER)

    def walk(self, walk: _Walk) -> None:
        parts = [
            self.pool.apply_async(_walk_span, (self.source, walk.mac_keys, lo, hi, self.store, index))
            for index, (lo, hi) in enumerate(self.ranges)
        ]
        for part in parts:
            walk.join(part.get())

    def cross_check(self) -> None:
        assert self.store is not None
        found = self.pool.starmap(
            _check_bucket,
            [(self.source, self.store, len(self.ranges), b) for b in range(len(self.store.buckets))],
            chunksize=1,
        )
        bad = cross_check.first_of(found)
        if bad is not None:
            raise bad


_stop: Any = None  # in a worker: the parent's "stop walking" event


def _watch(stop: Any) -> None:
    """A worker's start: the parent's stop event, and no cyclic garbage collector. The facts
    are millions of small lists and tuples, built and loaded here, and each collection
    pass walks all of them (a fifth of a worker's time); nothing here makes cycles."""
    global _stop
    _stop = stop
    gc.disable()


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
    session: Session, cross_checked: bool = True, sink: str | None = None, workers: int = 1
) -> AuditVerification:
    """Everything from genesis; names the first discrepancy. With ``workers`` > 1 a large
    chain is walked by that many processes (the CLI passes the machine's cores; the API's
    background job keeps to its thread)."""
    keys, conn = get_keys(), session.connection()
    head = session.get(AuditHead, 1)
    cp = checkpoints.latest(session)
    walk = _Walk(keys.mac_keys)
    try:
        with _Parallel(conn, workers, cross_checked) as parallel:
            if parallel is None:
                walk.facts = {} if cross_checked else None
                walk.run(_batches(conn, 0))
            else:
                parallel.walk(walk)
            _check_head(keys, head, walk)
            for each in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)):  # type: ignore[arg-type]
                _anchor(conn, _checkpoint_claims(keys, each), f"checkpoint:{each.seq}")
            target = get_settings().audit_sink if sink is None else sink
            anchored = checkpoints.sink_latest(target) if target else None
            if anchored is not None:
                _anchor(conn, anchored, "the external sink's last checkpoint")
            if parallel is not None and cross_checked:
                parallel.cross_check()
            elif walk.facts is not None:
                driver = conn.connection.driver_connection
                found = cross_check.check(driver, is_sqlite(str(conn.engine.url)), walk.facts)
                if found is not None:
                    raise Discrepancy(found[2], found[3])
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
        walk.run(_batches(conn, walk.seq))
        _check_head(keys, head, walk)
    except Discrepancy as bad:
        return _result(False, head, walk, False, cp, bad)
    return _result(True, head, walk, False, cp)
