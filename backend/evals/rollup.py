"""The rollups behind ``/v1/metrics``, kept in step with every proposal inside its own transaction.

``metric_counts`` and ``metric_reasons`` hold per UTC day (of the proposal's creation), agent
and action type what the metrics summary counts; ``decision_times`` holds one row per human
decision with its seconds, indexed by group and value. The ``rollups`` commit step
(``backend/on_commit.py``) reads the audit events the transaction just wrote, like the
``metrics`` step: each ``proposal.created`` adds its proposal, each move to approved or rejected
(``proposal.decided``, ``proposal.expired`` with outcome rejected) adds one to that count, and a
decision's row adds its seconds. So a summary costs a row per group and day, and placing or
deciding costs a few upserts per batch, whatever is stored.

Only the moves the summary counts change a rollup: approved, executed and failed all count as
approved, so execution changes nothing; expired and cancelled count as neither. Proposals
placed by eval runs (linked in the same batch) are left out, as in the summary.
:func:`rebuild` recomputes everything from the stored rows (the migration that adds the tables
runs it, and so can an operator after restoring rows by hand).
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession

from backend.audit import chain
from backend.core import commit
from models.audit import AuditAction
from models.evals import DecisionTime, EvalRunProposal, MetricCount, MetricReason
from models.proposals import Decision, Proposal

APPROVED = frozenset({"approved", "executed", "failed"})
COUNTERS = (
    "proposals",
    "approved",
    "rejected",
    "escalated",
    "violations",
    "tool_calls_sum",
    "tool_calls_n",
    "tokens_sum",
    "tokens_n",
)
_CHUNK = 500


def day_of(at: datetime) -> str:
    """The UTC day bucket, as the summary's SQL names it (``YYYY-MM-DD``)."""
    return at.astimezone(UTC).date().isoformat()


def day_sql(dialect: str, column: str = "p.created_at") -> str:
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return f"substr(CAST({column} AS TEXT), 1, 10)"


def seconds_sql(dialect: str) -> str:
    """Seconds from placing to decision, the same expression the summary always used."""
    if dialect == "postgresql":
        return "EXTRACT(EPOCH FROM (d.created_at - p.created_at))"
    return "(julianday(d.created_at) - julianday(p.created_at)) * 86400.0"


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


_PLACED = "signoff_rollup_placed"


Rows = list[dict[str, Any]]


def placed(session: OrmSession, proposals: Rows, decisions: Rows, links: Rows) -> None:
    """A placement batch's rows as written (``backend/proposals/batch.py``), so that the step
    reads nothing back for the hot path. Eval runs' proposals are left out here."""
    linked = {link["proposal_id"] for link in links}
    notes = session.info.setdefault(_PLACED, ([], {}))
    notes[0].extend(row for row in proposals if row["id"] not in linked)
    for decision in decisions:
        if decision["verdict"] == "reject" and decision["proposal_id"] not in linked:
            notes[1].setdefault(decision["proposal_id"], []).append(decision["reason_codes"])


def _apply(session: OrmSession) -> None:
    """Before the commit, after ``audit``: fold this transaction's proposals into the rollups."""
    new_rows, new_reasons = session.info.pop(_PLACED, ([], {}))
    created: set[str] = set()
    moved: dict[str, str] = {}  # proposal id -> "approved" / "rejected"
    decided: set[str] = set()  # proposals that may have a new human decision
    for event in chain.written(session):
        pid = event.subject_id
        if event.subject_kind != "proposal" or not pid:
            continue
        if event.action == AuditAction.PROPOSAL_CREATED:
            created.add(pid)
        elif event.action == AuditAction.PROPOSAL_DECIDED:
            moved[pid] = "approved" if event.data.get("verdict") == "approve" else "rejected"
            decided.add(pid)
        elif event.action == AuditAction.DECISION_RECORDED:
            decided.add(pid)
        elif event.action == AuditAction.PROPOSAL_EXPIRED and event.data.get("outcome") == "rejected":
            moved[pid] = "rejected"
    counts: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    reasons: ReasonCounts = defaultdict(int)
    for row in new_rows:
        if row["id"] not in created:  # not committed with an audit event: not placed
            continue
        key = _key(row["created_at"], row["agent_id"], row["action_type"])
        c = counts[key]
        status, outcome = row["status"], row["policy_outcome"]
        c["proposals"] += 1
        c["approved"] += status in APPROVED
        c["rejected"] += status == "rejected"
        c["escalated"] += row["mode"] in ("draft", "approve") and outcome != "deny"
        c["violations"] += outcome == "deny"
        context = row["context"] or {}
        for name in ("tool_calls", "tokens"):
            value = _int(context.get(name))
            if value is not None:
                c[f"{name}_sum"] += value
                c[f"{name}_n"] += 1
        if status == "rejected":
            for codes in new_reasons.get(row["id"], ()):
                for code in codes or ():
                    reasons[(*key, str(code))] += 1
    # Moves and human decisions of proposals placed earlier: read those proposals.
    later = (set(moved) | decided) - created
    conn = session.connection()
    rows = {r.id: r for r in _proposals(conn, later)} if later else {}
    rejected: list[str] = []
    for pid, row in rows.items():
        if pid in moved:
            counts[_key(row.created_at, row.agent_id, row.action_type)][moved[pid]] += 1
            if moved[pid] == "rejected":
                rejected.append(pid)
    _add_counts(conn, counts)
    _reasons_of(conn, rows, rejected, reasons)
    _add_reasons(conn, reasons)
    _add_times(conn, [pid for pid in decided if pid in rows])


def _forget(session: OrmSession) -> None:
    session.info.pop(_PLACED, None)


def _key(created_at: datetime, agent_id: str, action_type: str) -> tuple[str, str, str]:
    return (agent_id, action_type, day_of(created_at))


def _proposals(conn: Connection, ids: Iterable[str]) -> list[Any]:
    """The proposals among ``ids`` the summary counts (not eval runs'), with what it groups by."""
    wanted = sorted(ids)
    out: list[Any] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        stmt = select(Proposal.id, Proposal.agent_id, Proposal.action_type, Proposal.created_at).where(
            Proposal.id.in_(chunk),  # type: ignore[attr-defined]
            Proposal.id.not_in(  # type: ignore[attr-defined]
                select(EvalRunProposal.proposal_id).where(EvalRunProposal.proposal_id.in_(chunk))  # type: ignore[attr-defined]
            ),
        )
        out.extend(conn.execute(stmt).all())
    return out


@cache
def _upsert(dialect: str, which: str) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding to the stored counts; built once per dialect."""
    model, key, added = (
        (MetricCount, ["agent_id", "action_type", "day"], COUNTERS)
        if which == "counts"
        else (MetricReason, ["agent_id", "action_type", "code", "day"], ("count",))
    )
    table = model.__table__  # type: ignore[attr-defined]
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return stmt.on_conflict_do_update(
        index_elements=key, set_={name: table.c[name] + stmt.excluded[name] for name in added}
    )


def _add_counts(conn: Connection, counts: dict[tuple[str, str, str], dict[str, int]]) -> None:
    rows = [
        {"agent_id": k[0], "action_type": k[1], "day": k[2], **v}
        for k, v in sorted(counts.items())  # one order for every writer: no deadlock on PostgreSQL
        if any(v.values())
    ]
    if not rows:
        return
    conn.execute(_upsert(conn.dialect.name, "counts"), rows)


ReasonCounts = dict[tuple[str, str, str, str], int]


def _reasons_of(conn: Connection, proposals: dict[str, Any], rejected: list[str], into: ReasonCounts) -> None:
    """The reason codes of the reject decisions of proposals placed earlier and rejected now."""
    for start in range(0, len(rejected), _CHUNK):
        chunk = rejected[start : start + _CHUNK]
        stmt = select(Decision.proposal_id, Decision.reason_codes).where(
            Decision.proposal_id.in_(chunk),  # type: ignore[attr-defined]
            Decision.verdict == "reject",  # type: ignore[arg-type]
        )
        for pid, codes in conn.execute(stmt):
            row = proposals[pid]
            for code in codes or ():
                into[(*_key(row.created_at, row.agent_id, row.action_type), str(code))] += 1


def _add_reasons(conn: Connection, counts: ReasonCounts) -> None:
    if not counts:
        return
    rows = [
        {"agent_id": k[0], "action_type": k[1], "day": k[2], "code": k[3], "count": n}
        for k, n in sorted(counts.items())
    ]
    conn.execute(_upsert(conn.dialect.name, "reasons"), rows)


def _times_sql(dialect: str, where: str) -> str:
    return (
        "INSERT INTO decision_times (decision_id, agent_id, action_type, created_at, day, seconds) "
        f"SELECT d.id, p.agent_id, p.action_type, p.created_at, {day_sql(dialect)}, {seconds_sql(dialect)} "
        "FROM decisions d JOIN proposals p ON p.id = d.proposal_id "
        f"WHERE d.decided_by = 'user' AND {where}"
    )


def _add_times(conn: Connection, ids: list[str]) -> None:
    """Human decisions of these proposals not yet in ``decision_times`` (its key makes a
    decision count once), their seconds computed by the database as the summary did."""
    if not ids:
        return
    sql = text(
        _times_sql(
            conn.dialect.name,
            "d.proposal_id IN :ids "
            "AND NOT EXISTS (SELECT 1 FROM decision_times t WHERE t.decision_id = d.id)",
        )
    ).bindparams(bindparam("ids", expanding=True))
    for start in range(0, len(ids), _CHUNK):
        conn.execute(sql, {"ids": ids[start : start + _CHUNK]})


_NOT_EVAL = "NOT EXISTS (SELECT 1 FROM eval_run_proposals e WHERE e.proposal_id = p.id)"


def rebuild(conn: Connection) -> None:
    """Recompute every rollup from the stored proposals and decisions (in the caller's transaction)."""
    dialect = conn.dialect.name
    for table in (MetricCount, MetricReason, DecisionTime):
        conn.execute(delete(table))
    if dialect == "postgresql":
        tool_calls, tokens = "(p.context->>'tool_calls')::numeric", "(p.context->>'tokens')::numeric"
        unnest, code = "jsonb_array_elements_text(d.reason_codes) AS r(code)", "r.code"
    else:
        tool_calls, tokens = "json_extract(p.context, '$.tool_calls')", "json_extract(p.context, '$.tokens')"
        unnest, code = "json_each(d.reason_codes) AS r", "r.value"
    day = day_sql(dialect)
    conn.execute(
        text(
            "INSERT INTO metric_counts (day, agent_id, action_type, proposals, approved, rejected, "
            "escalated, violations, tool_calls_sum, tool_calls_n, tokens_sum, tokens_n) "
            f"SELECT {day}, p.agent_id, p.action_type, count(*), "
            "sum(CASE WHEN p.status IN ('approved', 'executed', 'failed') THEN 1 ELSE 0 END), "
            "sum(CASE WHEN p.status = 'rejected' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN p.mode IN ('draft', 'approve') AND p.policy_outcome <> 'deny' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN p.policy_outcome = 'deny' THEN 1 ELSE 0 END), "
            f"coalesce(CAST(sum({tool_calls}) AS BIGINT), 0), count({tool_calls}), "
            f"coalesce(CAST(sum({tokens}) AS BIGINT), 0), count({tokens}) "
            f"FROM proposals p WHERE {_NOT_EVAL} GROUP BY {day}, p.agent_id, p.action_type"
        )
    )
    conn.execute(
        text(
            "INSERT INTO metric_reasons (day, agent_id, action_type, code, count) "
            f"SELECT {day}, p.agent_id, p.action_type, {code}, count(*) "
            f"FROM decisions d JOIN proposals p ON p.id = d.proposal_id, {unnest} "
            f"WHERE d.verdict = 'reject' AND {_NOT_EVAL} GROUP BY {day}, p.agent_id, p.action_type, {code}"
        )
    )
    conn.execute(text(_times_sql(dialect, _NOT_EVAL)))


COMMIT_STEP = commit.Step("rollups", before_commit=_apply, after_rollback=_forget)

__all__ = ["COMMIT_STEP", "day_of", "placed", "rebuild"]
