"""Export of eval cases: one decided proposal = one self-contained case.

Memory stays flat whatever the size: rows are read in keyset batches (by proposal id),
JSON columns are fetched as text and parsed with orjson, and each batch is rendered to
bytes and handed on before the next is read. Field names are the contract documented
in docs/eval-data.md; add fields, never rename them.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import String, Text, and_, cast, exists, func, select, text, type_coerce
from sqlmodel import Session

from backend.agents import lookup
from backend.catalog.pii import mask_payload, pii_paths
from backend.core.db import read_session
from models.action_types import ActionType
from models.agents import Agent
from models.evals import Annotation, EvalRunProposal
from models.proposals import Decision, Proposal, Status, Verdict

SCHEMA_VERSION = 1
BATCH = 1000
DECIDED = (Status.approved, Status.rejected, Status.executed, Status.failed)
APPROVED = (Status.approved, Status.executed, Status.failed)

# The CSV columns, in order; nested values are JSON-encoded strings.
FIELDS = [
    "schema_version",
    "id",
    "action_type",
    "action_type_version",
    "agent_id",
    "agent_name",
    "status",
    "mode",
    "summary",
    "payload",
    "evidence",
    "context",
    "model",
    "prompt_version",
    "tool_schema_version",
    "verdict",
    "decided_by",
    "reviewer_sub",
    "reviewer_name",
    "reason_codes",
    "comment",
    "edited_payload",
    "final_payload",
    "annotations",
    "policy_version",
    "policy_outcome",
    "policy_ids",
    "flags",
    "created_at",
    "decided_at",
    "time_to_decision_s",
    "masked_fields",
]


@dataclass(frozen=True)
class ExportFilter:
    since: datetime | None = None
    until: datetime | None = None
    action_type: str | None = None
    agent: str | None = None
    verdict: Verdict | None = None
    reason_code: str | None = None
    mask_pii: bool = True


def _reason_filter(dialect: str, code: str) -> Any:
    """Some decision of the proposal carries `code` (its own alias: `decisions` is joined outside)."""
    if dialect == "postgresql":
        sql = (
            "EXISTS (SELECT 1 FROM decisions rd WHERE rd.proposal_id = proposals.id "
            "AND rd.reason_codes @> jsonb_build_array(CAST(:rc AS text)))"
        )
    else:
        sql = (
            "EXISTS (SELECT 1 FROM decisions rd, json_each(rd.reason_codes) je "
            "WHERE rd.proposal_id = proposals.id AND je.value = :rc)"
        )
    return text(sql).bindparams(rc=code)


def _plain(column: Any) -> Any:
    """`column || ''`: same value, but no index on it can serve the condition. The export
    walks the primary key in windows; an index on status, agent or action type would make
    the planner fetch every match of the table and sort them, for every window."""
    return column.concat("")


def _where(session: Session, f: ExportFilter) -> list[Any]:
    statuses = APPROVED if f.verdict == Verdict.approve else (Status.rejected,) if f.verdict else DECIDED
    conds: list[Any] = [
        _plain(Proposal.status).in_([s.value for s in statuses]),
        # Proposals placed by an eval run are the run's, not eval data about production.
        ~exists().where(EvalRunProposal.proposal_id == Proposal.id),
    ]
    if f.since:
        conds.append(Proposal.decided_at >= f.since)  # type: ignore[operator]
    if f.until:
        conds.append(Proposal.decided_at < f.until)  # type: ignore[operator]
    if f.action_type:
        conds.append(_plain(Proposal.action_type) == f.action_type)
    if f.agent:
        conds.append(_plain(Proposal.agent_id) == lookup.id_of(session, f.agent))
    if f.reason_code:
        conds.append(_reason_filter(session.get_bind().dialect.name, f.reason_code))
    return conds


_PCOLS = (
    Proposal.id,
    Proposal.agent_id,
    Proposal.action_type,
    Proposal.action_type_version,
    Proposal.status,
    Proposal.mode,
    Proposal.summary,
    cast(Proposal.payload, Text),
    cast(Proposal.evidence, Text),
    cast(Proposal.context, Text),
    Proposal.policy_version,
    Proposal.policy_outcome,
    cast(Proposal.policy_ids, Text),
    cast(Proposal.flags, Text),
    # Timestamps unprocessed: SQLite hands back its text, PostgreSQL a datetime (see _ts).
    type_coerce(Proposal.created_at, String),
    type_coerce(Proposal.decided_at, String),
)
_DCOLS = (
    Decision.proposal_id,
    Decision.id,  # kept at these positions: _case reads d[2:] by index
    Decision.verdict,
    Decision.decided_by,
    Decision.reviewer_sub,
    Decision.reviewer_name,
    cast(Decision.reason_codes, Text),
    Decision.comment,
    cast(Decision.edited_payload, Text),
    Decision.policy_version,
)
_NP = len(_PCOLS)
# The decision that ended the proposal: the latest (ids are ULIDs, so max is latest).
_LATEST = (
    select(func.max(Decision.id))
    .where(Decision.proposal_id == Proposal.id)  # type: ignore[arg-type]
    .correlate(Proposal)
    .scalar_subquery()
)
_ACOLS = (
    Annotation.proposal_id,
    Annotation.id,
    Annotation.author_sub,
    Annotation.author_name,
    cast(Annotation.labels, Text),
    Annotation.severity,
    Annotation.note,
    Annotation.created_at,
    Annotation.updated_at,
)


def _loads(raw: str | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def iter_cases(
    session: Session, f: ExportFilter, batch: int = BATCH, raw: bool = False
) -> Iterator[list[dict[str, Any]]]:
    """Cases in batches, oldest proposal first. `raw`: JSON columns as orjson fragments."""
    conds = _where(session, f)
    pii = {}
    if f.mask_pii:
        for at in session.execute(select(ActionType.name, ActionType.payload_schema)).all():
            paths = pii_paths(at[1] or {})
            if paths:
                pii[at[0]] = paths
    names: dict[str, str] = {}
    last = ""
    conn = session.connection()  # Core execution: no ORM result machinery on the hot path
    while True:
        # A window of `batch` primary keys: (last, hi]. hi is None on the last window.
        hi = conn.execute(
            select(Proposal.id).where(Proposal.id > last).order_by(Proposal.id).offset(batch - 1).limit(1)  # type: ignore[arg-type]
        ).scalar()
        window = [Proposal.id > last] + ([Proposal.id <= hi] if hi is not None else [])
        rows = conn.execute(
            select(*_PCOLS, *_DCOLS)
            .select_from(Proposal)
            .outerjoin(Decision, and_(Decision.proposal_id == Proposal.id, Decision.id == _LATEST))  # type: ignore[arg-type]
            .where(*window, *conds)
            .order_by(Proposal.id)
        ).all()
        done = hi is None
        if rows:
            yield _batch(conn, rows, names, pii, raw)
        if done:
            return
        last = hi


def _batch(
    conn: Any, rows: list[Any], names: dict[str, str], pii: dict[str, list[str]], raw: bool
) -> list[dict[str, Any]]:
    """The cases of one window's rows, with their annotations and agent names."""
    notes: dict[str, list[dict[str, Any]]] = {}
    lo, hi = rows[0][0], rows[-1][0]
    for a in conn.execute(
        select(*_ACOLS)
        .where(Annotation.proposal_id >= lo, Annotation.proposal_id <= hi)  # type: ignore[arg-type]
        .order_by(Annotation.id)
    ):
        notes.setdefault(a[0], []).append(
            {
                "id": a[1],
                "author_sub": a[2],
                "author_name": a[3],
                "labels": orjson.loads(a[4]),
                "severity": a[5],
                "note": a[6],
                "created_at": a[7],
                "updated_at": a[8],
            }
        )
    missing = {r[1] for r in rows} - names.keys()
    if missing:
        names.update(conn.execute(select(Agent.id, Agent.name).where(Agent.id.in_(missing))).all())  # type: ignore[attr-defined, arg-type]
    return [
        _case(r, r[_NP:] if r[_NP] is not None else None, notes.get(r[0], []), names, pii, raw) for r in rows
    ]


def _ts(value: Any) -> tuple[Any, datetime | None]:
    """(what to write, the instant). Parsing SQLite's stored text ourselves is several times
    cheaper than the ORM's datetime processing, and this runs twice per case."""
    if value is None:
        return None, None
    if isinstance(value, str):  # SQLite: naive UTC "YYYY-MM-DD HH:MM:SS[.ffffff]"
        at = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return at, at
    at = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return at, at


def _case(
    r: Any,
    d: tuple[Any, ...] | None,
    annotations: list[dict[str, Any]],
    names: dict[str, str],
    pii: dict[str, list[str]],
    raw: bool,
) -> dict[str, Any]:
    """One case. With `raw`, JSON columns pass through as orjson fragments (no parse, no
    re-encode): the export's hot path. Payloads with PII to mask are always parsed."""
    paths = pii.get(r[2])
    json_in = orjson.Fragment if raw else orjson.loads
    masked: list[str] = []
    if paths:
        payload: Any = orjson.loads(r[7])
        edited: Any = _loads(d[8]) if d else None
        masked = [f"payload.{p}" for p in mask_payload(payload, paths)]
        masked += [f"edited_payload.{p}" for p in mask_payload(edited, paths)]
    else:
        payload = json_in(r[7])
        # a JSON column holding None stores the text 'null', not SQL NULL
        edited = json_in(d[8]) if d and d[8] not in (None, "null") else None
    context = orjson.loads(r[9]) or {}
    verdict = d[2] if d else (Verdict.reject.value if r[4] == Status.rejected else Verdict.approve.value)
    created, created_at = _ts(r[14])
    decided, decided_at = _ts(r[15])
    return {
        "schema_version": SCHEMA_VERSION,
        "id": r[0],
        "action_type": r[2],
        "action_type_version": r[3],
        "agent_id": r[1],
        "agent_name": names.get(r[1]),
        "status": r[4],
        "mode": r[5],
        "summary": r[6],
        "payload": payload,
        "evidence": json_in(r[8]),
        "context": context,
        "model": context.get("model"),
        "prompt_version": context.get("prompt_version"),
        "tool_schema_version": context.get("tool_schema_version"),
        "verdict": verdict,
        "decided_by": d[3] if d else None,
        "reviewer_sub": d[4] if d else None,
        "reviewer_name": d[5] if d else None,
        "reason_codes": json_in(d[6]) if d else [],
        "comment": d[7] if d else "",
        "edited_payload": edited,
        "final_payload": (edited if edited is not None else payload) if verdict == Verdict.approve else None,
        "annotations": annotations,
        "policy_version": (d[9] if d and d[9] is not None else r[10]),
        "policy_outcome": r[11],
        "policy_ids": json_in(r[12]),
        "flags": json_in(r[13]),
        "created_at": created,
        "decided_at": decided,
        "time_to_decision_s": (
            round((decided_at - created_at).total_seconds(), 3) if decided_at and created_at else None
        ),
        "masked_fields": masked,
    }


_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def jsonl_chunks(batches: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    for cases in batches:
        yield b"".join(orjson.dumps(c, option=_OPTS | orjson.OPT_APPEND_NEWLINE) for c in cases)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=_OPTS).decode()
    if isinstance(value, datetime):
        return orjson.dumps(value, option=_OPTS).decode().strip('"')
    return "" if value is None else value


def csv_chunks(batches: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    yield buf.getvalue().encode()
    for cases in batches:
        buf.seek(0)
        buf.truncate()
        writer.writerows([[_cell(c[k]) for k in FIELDS] for c in cases])
        yield buf.getvalue().encode()


def stream(f: ExportFilter, fmt: str = "jsonl", session: Session | None = None) -> Iterator[bytes]:
    """Bytes of the export, in chunks; opens (and closes) its own read session unless given one."""
    own = session is None
    session = session or read_session()
    try:
        if fmt == "csv":
            yield from csv_chunks(iter_cases(session, f))
        else:
            yield from jsonl_chunks(iter_cases(session, f, raw=True))
    finally:
        if own:
            session.close()
