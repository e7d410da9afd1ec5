"""The rows against their events: each proposal, decision and execution row compared with
what the audit events recorded about it (the facts a walk of the chain gathers).

A full verify gathers the facts while it walks the chain (:func:`note`), then checks the
rows: in one pass, or split by proposal id into buckets checked side by side
(:func:`split`, :func:`bucket_bounds`). A bucket holds every fact and row of the proposals
whose ids fall in it, so buckets are checked without each other, and the first discrepancy
of the whole check is the first among the buckets' firsts (:func:`first_of`).
"""

import bisect
import hashlib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from backend.core.canonical import sha256_hex

BATCH = 20_000
# The events that create a proposal, decision or execution row or change a proposal's
# status. The other actions on a proposal (``decision.refused``, ``proposal.claimed``,
# ``proposal.released``, ``proposal.assigned``, ``proposal.reminded``,
# ``proposal.escalated``, ``policy.evaluated``) write no such row and move no status, so
# the cross-check has nothing to compare them with.
CROSS_CHECKED = {
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

# A proposal id range [low, high); None for an open end.
Bucket = tuple[str | None, str | None]
# A bucket's first discrepancy: (kind, key, reason, first_bad). Kinds in the order the
# rows are checked; within a kind the lowest key is first, as one pass over the rows would
# meet it.
Found = tuple[int, str, str, str]
_PROPOSAL, _DECISION, _EXECUTION_ROW, _MISSING_EXECUTION = range(4)


class Discrepancy(Exception):
    def __init__(self, reason: str, first_bad: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.first_bad = reason, first_bad


def note(facts: Facts, action: str, subject: str, data: dict[str, Any]) -> None:
    """Record what one event says about its proposal."""
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


def merge(facts: Facts, later: Facts) -> None:
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


# Crockford's base32, as ULIDs are written: their first ten characters are the creation
# time in milliseconds.
_ULID_DIGITS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TIME_CHARS = 10


def bucket_bounds(lowest: str | None, highest: str | None, buckets: int) -> list[Bucket]:
    """Proposal id ranges for `buckets` checkers, cut at even steps of creation time between
    the lowest and highest proposal ids (ULIDs): two index lookups, where counting out
    quantiles read the whole index (two seconds for a million proposals on PostgreSQL).
    Together the ranges cover every string, so each fact and row falls in exactly one,
    whatever its id; ids that are not ULIDs only make the buckets uneven."""
    start, end = _ulid_time(lowest), _ulid_time(highest)
    if start is None or end is None or end <= start or buckets < 2:
        return [(None, None)]
    cuts = sorted({_ulid_prefix(start + (end - start) * j // buckets) for j in range(1, buckets)})
    return list(zip([None, *cuts], [*cuts, None], strict=True))


def _ulid_time(ident: str | None) -> int | None:
    if ident is None or len(ident) < _TIME_CHARS:
        return None
    value = 0
    for char in ident[:_TIME_CHARS].upper():
        digit = _ULID_DIGITS.find(char)
        if digit < 0:
            return None
        value = value * 32 + digit
    return value


def _ulid_prefix(ms: int) -> str:
    chars = []
    for _ in range(_TIME_CHARS):
        ms, digit = divmod(ms, 32)
        chars.append(_ULID_DIGITS[digit])
    return "".join(reversed(chars))


def split(facts: Facts, buckets: list[Bucket]) -> list[Facts]:
    """The facts by bucket, each keeping the walk's order."""
    cuts = [high for _, high in buckets[:-1]]
    parts: list[Facts] = [{} for _ in buckets]
    where = bisect.bisect_right
    for pid, seen in facts.items():
        parts[where(cuts, pid)][pid] = seen
    return parts


def first_of(found: list[Found | None]) -> Discrepancy | None:
    """The discrepancy one pass over all the rows would have met first."""
    firsts = [f for f in found if f is not None]
    if not firsts:
        return None
    _, _, reason, first_bad = min(firsts)
    return Discrepancy(reason, first_bad)


def check(driver: Any, sqlite: bool, facts: Facts, bucket: Bucket = (None, None)) -> Found | None:
    """The first row in `bucket` that does not match its events, or None.

    `driver` is a DB-API connection (sqlite3 or psycopg) reading the rows; on PostgreSQL in
    a transaction (the server-side cursors need one)."""
    get = facts.get
    with _scan(driver, sqlite, _PROPOSAL_ROWS, "id", bucket) as rows:
        for pid, status, payload in rows:
            seen = get(pid)
            if seen is None or not seen[_SEEN] & _CREATED:
                reason = f"proposal {pid}: no proposal.created event records it"
                return _PROPOSAL, pid, reason, f"proposal:{pid}"
            if not _payload_matches(seen[_PAYLOAD], _json(payload)):
                return (
                    _PROPOSAL,
                    pid,
                    f"proposal {pid}: its payload does not match the one its proposal.created event recorded",
                    f"proposal:{pid}",
                )
            if seen[_STATUS] != status:
                return (
                    _PROPOSAL,
                    pid,
                    f"proposal {pid}: its status is {status} but its events say {seen[_STATUS]}",
                    f"proposal:{pid}",
                )
    with _scan(driver, sqlite, _DECISION_ROWS, "proposal_id", bucket) as rows:
        for did, pid, verdict, sub, edited in rows:
            seen = get(pid)
            recorded = seen[_DECISIONS] if seen is not None else None
            edit = None if edited is None or edited == "null" else sha256_hex(orjson.loads(edited))
            if recorded is None or (verdict, sub, edit) not in recorded:
                return (
                    _DECISION,
                    did,
                    f"decision {did} (proposal {pid}): {verdict} by {sub or 'policy or system'} does not "
                    "match any proposal.decided, decision.recorded or proposal.expired event",
                    f"decision:{did}",
                )
    # Each execution row matches at most one proposal's facts (one row per proposal), so
    # when as many rows match as facts record an execution, none is missing.
    matched = 0
    with _scan(driver, sqlite, _EXECUTION_ROWS, "proposal_id", bucket) as rows:
        for pid, status, result in rows:
            seen = get(pid)
            recorded = seen[_EXECUTION] if seen is not None else None
            if recorded != (status, _result_digest(_json(result))):
                return (
                    _EXECUTION_ROW,
                    pid,
                    f"execution of proposal {pid}: its status or result does not match its "
                    "proposal.executed event",
                    f"execution:{pid}",
                )
            matched += 1
    if matched == sum(1 for seen in facts.values() if seen[_EXECUTION] is not None):
        return None
    with _scan(driver, sqlite, _EXECUTION_ROWS, "proposal_id", bucket) as rows:
        rowed = {pid for pid, _, _ in rows}
    recorded_only = (pid for pid, seen in facts.items() if seen[_EXECUTION] is not None and pid not in rowed)
    missing = min(recorded_only, default=None)
    if missing is None:  # the counts differed, yet every recorded execution has its row
        return None
    return (
        _MISSING_EXECUTION,
        missing,
        f"execution of proposal {missing}: the event records one but the row is missing",
        f"execution:{missing}",
    )


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
_PROPOSAL_ROWS = "SELECT id, status, payload{cast} FROM proposals{where} ORDER BY id"
_DECISION_ROWS = (
    "SELECT id, proposal_id, verdict, reviewer_sub, edited_payload{cast} FROM decisions{where} ORDER BY id"
)
_EXECUTION_ROWS = "SELECT proposal_id, status, result{cast} FROM executions{where} ORDER BY proposal_id"


@contextmanager
def _scan(
    driver: Any, sqlite: bool, statement: str, column: str, bucket: Bucket
) -> Iterator[Iterator[tuple[Any, ...]]]:
    """A table's rows in `bucket` straight off the driver's cursor, as the walk reads the
    events: JSON as text (decoded with orjson, as the engine does), without SQLAlchemy's
    per-row work. On PostgreSQL a server-side cursor, so memory stays flat.

    The range is compared in the database's collation, the facts were split in code point
    order (:func:`split`). The cuts are ULID prefixes, ordered alike in both, so each row is
    still read by exactly one bucket; an id that sorts differently in a database's locale (not
    a ULID) can only be reported as a discrepancy, never left unchecked."""
    mark = "?" if sqlite else "%s"
    low, high = bucket
    terms = [f"{column} >= {mark}"] if low is not None else []
    terms += [f"{column} < {mark}"] if high is not None else []
    where = " AND ".join(terms)
    params = tuple(b for b in bucket if b is not None)
    sql = statement.format(cast="" if sqlite else "::text", where=f" WHERE {where}" if where else "")
    cur = driver.cursor() if sqlite else driver.cursor(name="signoff_audit_cross_check")
    try:
        cur.execute(sql, params)
        # In batches: psycopg's server-side cursor costs a Python call per row iterated.
        yield itertools.chain.from_iterable(iter(lambda: cur.fetchmany(BATCH), []))
    finally:
        cur.close()


def _json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)
