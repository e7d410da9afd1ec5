"""The metrics the seed's Table 2 asks for, per agent and action type, computed in SQL.

Served from the rollups (``backend/evals/rollup.py``) for whole UTC days and from the rows for
a day ``since`` cuts, so a summary costs what changed, not what is stored; :func:`recount` is
the same answer counted from every row.

Counts, rates, reasons and (on PostgreSQL) percentiles are aggregated by the database;
SQLite has no percentile function, so there the per-group durations are streamed (one
float per decision) and interpolated the way ``percentile_cont`` does. Proposals placed
by eval runs are left out: they are not production traffic.

Definitions: approval_rate and rejection_rate are over decided proposals (policy
denials count as rejections, with reason ``policy_denied``); escalation_rate is the share
of proposals that went to a human (effective mode draft or approve, not denied);
time to decision is over human decisions; policy_violations counts policy denials;
scenario_pass_rate is the latest completed eval run of that agent for that action type;
tool_calls_per_task and tokens_per_task are the means of the proposals' context values.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session, select

from backend.agents import lookup
from backend.evals import rollup
from models.agents import Agent
from models.common import UTCDateTime
from models.evals import EvalRun

_COUNTS = """
    count(*) AS proposals,
    sum(CASE WHEN p.status IN ('approved', 'executed', 'failed') THEN 1 ELSE 0 END) AS approved,
    sum(CASE WHEN p.status = 'rejected' THEN 1 ELSE 0 END) AS rejected,
    sum(CASE WHEN p.mode IN ('draft', 'approve') AND p.policy_outcome <> 'deny' THEN 1 ELSE 0 END)
        AS escalated,
    sum(CASE WHEN p.policy_outcome = 'deny' THEN 1 ELSE 0 END) AS policy_violations
"""


def _per_task(dialect: str) -> str:
    """Mean tool calls and tokens per task, from the proposals' context."""
    if dialect == "postgresql":
        return "avg((p.context->>'tool_calls')::float), avg((p.context->>'tokens')::float)"
    return "avg(json_extract(p.context, '$.tool_calls')), avg(json_extract(p.context, '$.tokens'))"


def _filters(
    session: Session,
    since: datetime | None,
    until: datetime | None,
    agent: str | None,
    action_type: str | None,
):
    where = ["NOT EXISTS (SELECT 1 FROM eval_run_proposals e WHERE e.proposal_id = p.id)"]
    params: dict[str, Any] = {}
    if since:
        where.append("p.created_at >= :since")
        params["since"] = since
    if until:
        where.append("p.created_at < :until")
        params["until"] = until
    if agent:
        where.append("a.id = :agent")
        params["agent"] = lookup.id_of(session, agent)
    if action_type:
        where.append("p.action_type = :action_type")
        params["action_type"] = action_type
    return " AND ".join(where), params


def _bind(session: Session, sql: str, params: dict[str, Any]) -> Any:
    times = [bindparam(k, type_=UTCDateTime()) for k in ("since", "until") if k in params]
    return session.execute(text(sql).bindparams(*times), params)


def _bucket_expr(dialect: str) -> str:
    if dialect == "postgresql":
        return "to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return "substr(CAST(p.created_at AS TEXT), 1, 10)"


def _seconds_expr(dialect: str) -> str:
    if dialect == "postgresql":
        return "EXTRACT(EPOCH FROM (d.created_at - p.created_at))"
    return "(julianday(d.created_at) - julianday(p.created_at)) * 86400.0"


def _unnest(dialect: str) -> str:
    if dialect == "postgresql":
        return "jsonb_array_elements_text(d.reason_codes) AS r(code)"
    return "json_each(d.reason_codes) AS r"


def _code_col(dialect: str) -> str:
    return "r.code" if dialect == "postgresql" else "r.value"


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not values:
        return None, None
    return _pick(len(values), 0.5, lambda lo: values[lo : lo + 2]), _pick(
        len(values), 0.95, lambda lo: values[lo : lo + 2]
    )


def _pick(n: int, q: float, at: Any) -> float:
    """The q-quantile of n sorted values, given ``at(lo)``: the values at ranks lo and lo + 1."""
    pos = q * (n - 1)
    lo = int(pos)
    pair = at(lo)
    low = pair[0]
    high = pair[1] if lo + 1 < n else low
    return low + (high - low) * (pos - lo)


def recount(
    session: Session,
    since: datetime | None,
    until: datetime | None,
    agent: str | None,
    action_type: str | None,
    bucket: bool,
) -> list[dict[str, Any]]:
    """The metrics counted straight from every stored proposal and decision: what the rollups
    must always equal (the tests compare them), and what the cost was before them."""
    dialect = session.get_bind().dialect.name
    where, params = _filters(session, since, until, agent, action_type)
    group = "p.agent_id, a.name, p.action_type"
    keys = group
    if bucket:
        keys = f"{_bucket_expr(dialect)} AS bucket, {group}"
        group = f"{_bucket_expr(dialect)}, {group}"
    base = f"FROM proposals p JOIN agents a ON a.id = p.agent_id WHERE {where}"
    nkeys = 4 if bucket else 3
    counts = f"{_COUNTS}, {_per_task(dialect)}"
    rows = _bind(session, f"SELECT {keys}, {counts} {base} GROUP BY {group}", params).all()
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[:nkeys])
        proposals, approved, rejected, escalated, violations = (int(v or 0) for v in row[nkeys : nkeys + 5])
        tool_calls, tokens = row[nkeys + 5 : nkeys + 7]
        decided = approved + rejected
        item: dict[str, Any] = {
            "agent_id": key[-3],
            "agent_name": key[-2],
            "action_type": key[-1],
            "proposals": proposals,
            "approved": approved,
            "rejected": rejected,
            "approval_rate": approved / decided if decided else None,
            "rejection_rate": rejected / decided if decided else None,
            "escalation_rate": escalated / proposals if proposals else None,
            "rejections_by_reason": {},
            "time_to_decision_p50_s": None,
            "time_to_decision_p95_s": None,
            "policy_violations": violations,
            "tool_calls_per_task": _round(tool_calls),
            "tokens_per_task": _round(tokens),
        }
        if bucket:
            item = {"bucket": key[0], **item}
        out[key] = item
    joined = "FROM decisions d JOIN proposals p ON p.id = d.proposal_id JOIN agents a ON a.id = p.agent_id"
    reasons = _bind(
        session,
        f"SELECT {keys}, {_code_col(dialect)}, count(*) {joined}, {_unnest(dialect)} "
        f"WHERE d.verdict = 'reject' AND {where} GROUP BY {group}, {_code_col(dialect)}",
        params,
    ).all()
    for row in reasons:
        item = out.get(tuple(row[:nkeys]))
        if item is not None:
            item["rejections_by_reason"][row[nkeys]] = int(row[nkeys + 1])
    human = f"d.decided_by = 'user' AND {where}"
    secs = _seconds_expr(dialect)
    if dialect == "postgresql":
        pct = _bind(
            session,
            f"SELECT {keys}, percentile_cont(0.5) WITHIN GROUP (ORDER BY {secs}), "
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {secs}) {joined} WHERE {human} GROUP BY {group}",
            params,
        ).all()
        for row in pct:
            item = out.get(tuple(row[:nkeys]))
            if item is not None:
                item["time_to_decision_p50_s"] = _round(row[nkeys])
                item["time_to_decision_p95_s"] = _round(row[nkeys + 1])
    else:
        current: tuple[Any, ...] | None = None
        values: list[float] = []
        stream = _bind(
            session, f"SELECT {keys}, {secs} AS s {joined} WHERE {human} ORDER BY {group}, s", params
        )
        for row in [*stream, None]:
            key = tuple(row[:nkeys]) if row is not None else None
            if key != current and current is not None and current in out:
                p50, p95 = _percentiles(values)
                out[current]["time_to_decision_p50_s"] = _round(p50)
                out[current]["time_to_decision_p95_s"] = _round(p95)
            if key != current:
                current, values = key, []
            if row is not None:
                values.append(float(row[nkeys]))
    return list(out.values())


# --- the summary as served: rollups for whole days, the proposals for a partial first day ---------


def _item(key: tuple[Any, ...], names: dict[str, str], c: dict[str, int], bucket: bool) -> dict[str, Any]:
    proposals, approved, rejected = c["proposals"], c["approved"], c["rejected"]
    decided = approved + rejected
    item: dict[str, Any] = {
        "agent_id": key[-2],
        "agent_name": names[key[-2]],
        "action_type": key[-1],
        "proposals": proposals,
        "approved": approved,
        "rejected": rejected,
        "approval_rate": approved / decided if decided else None,
        "rejection_rate": rejected / decided if decided else None,
        "escalation_rate": c["escalated"] / proposals if proposals else None,
        "rejections_by_reason": {},
        "time_to_decision_p50_s": None,
        "time_to_decision_p95_s": None,
        "policy_violations": c["violations"],
        "tool_calls_per_task": _round(c["tool_calls_sum"] / c["tool_calls_n"]) if c["tool_calls_n"] else None,
        "tokens_per_task": _round(c["tokens_sum"] / c["tokens_n"]) if c["tokens_n"] else None,
    }
    return {"bucket": key[0], **item} if bucket else item


def _sums(dialect: str) -> str:
    if dialect == "postgresql":
        tool_calls, tokens = "(p.context->>'tool_calls')::numeric", "(p.context->>'tokens')::numeric"
    else:
        tool_calls, tokens = "json_extract(p.context, '$.tool_calls')", "json_extract(p.context, '$.tokens')"
    return f"sum({tool_calls}), count({tool_calls}), sum({tokens}), count({tokens})"


def _first_day(since: datetime | None) -> tuple[str | None, datetime | None]:
    """The first whole day the rollups answer for, and where the partial day before it ends."""
    if since is None:
        return None, None
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    start = since.astimezone(UTC)
    midnight = datetime.combine(start.date(), time(), UTC)
    if start == midnight:
        return rollup.day_of(start), None
    if start.date() == date.max:  # no day after it: the rows answer for all of it
        return "9999-12-32", datetime.max.replace(tzinfo=UTC)
    end = midnight + timedelta(days=1)
    return rollup.day_of(end), end


def _fast(
    session: Session, since: datetime | None, agent: str | None, action_type: str | None, bucket: bool
) -> list[dict[str, Any]]:
    """The same answer as :func:`recount`, read from the rollups (``backend/evals/rollup.py``)
    for whole UTC days and from the proposals only for the part of a day ``since`` cuts."""
    dialect = session.get_bind().dialect.name
    agent_id = lookup.id_of(session, agent) if agent else None
    first_day, partial_end = _first_day(since)
    counts: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(rollup.COUNTERS, 0))
    reasons: dict[tuple[Any, ...], dict[str, int]] = defaultdict(dict)
    where, params = ["1 = 1"], {}
    if agent:
        where.append("agent_id = :agent")
        params["agent"] = agent_id
    if action_type:
        where.append("action_type = :action_type")
        params["action_type"] = action_type
    group = "day, agent_id, action_type" if bucket else "agent_id, action_type"
    nkeys = 3 if bucket else 2
    if first_day is not None:
        where.append("day >= :first_day")
        params["first_day"] = first_day
    cond = " AND ".join(where)
    totals = ", ".join(f"sum({name})" for name in rollup.COUNTERS)
    sql = f"SELECT {group}, {totals} FROM metric_counts WHERE {cond} GROUP BY {group}"
    for row in session.execute(text(sql), params):
        values = zip(rollup.COUNTERS, row[nkeys:], strict=True)
        counts[tuple(row[:nkeys])] = {n: int(v or 0) for n, v in values}
    sql = f"SELECT {group}, code, sum(count) FROM metric_reasons WHERE {cond} GROUP BY {group}, code"
    for row in session.execute(text(sql), params):
        reasons[tuple(row[:nkeys])][row[nkeys]] = int(row[nkeys + 1])
    if partial_end is not None:
        _add_partial(session, since, partial_end, agent, action_type, bucket, counts, reasons)
    ids = sorted({key[-2] for key in counts})
    names = dict(session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids))).tuples().all())  # type: ignore[attr-defined]
    out = {
        key: _item(key, names, c, bucket) for key, c in counts.items() if c["proposals"] and key[-2] in names
    }
    for key, by_code in reasons.items():
        if key in out:
            out[key]["rejections_by_reason"] = {code: n for code, n in by_code.items() if n}
    _times(session, dialect, since, agent_id, action_type, bucket, out)
    return list(out.values())


def _add_partial(
    session: Session,
    since: datetime | None,
    until: datetime,
    agent: str | None,
    action_type: str | None,
    bucket: bool,
    counts: dict[tuple[Any, ...], dict[str, int]],
    reasons: dict[tuple[Any, ...], dict[str, int]],
) -> None:
    """The proposals of the cut first day, counted from the rows (through ix_proposals_created)."""
    dialect = session.get_bind().dialect.name
    where, params = _filters(session, since, until, agent, action_type)
    day = [rollup.day_of(since if since.tzinfo else since.replace(tzinfo=UTC))] if since and bucket else []  # type: ignore[union-attr]
    base = f"FROM proposals p JOIN agents a ON a.id = p.agent_id WHERE {where}"
    sql = f"SELECT p.agent_id, p.action_type, {_COUNTS}, {_sums(dialect)} {base} "
    sql += "GROUP BY p.agent_id, p.action_type"
    names = ("proposals", "approved", "rejected", "escalated", "violations")
    for row in _bind(session, sql, params):
        c = counts[(*day, row[0], row[1])]
        for name, value in zip(names, row[2:7], strict=True):
            c[name] += int(value or 0)
        c["tool_calls_sum"] += int(row[7] or 0)
        c["tool_calls_n"] += int(row[8] or 0)
        c["tokens_sum"] += int(row[9] or 0)
        c["tokens_n"] += int(row[10] or 0)
    joined = "FROM decisions d JOIN proposals p ON p.id = d.proposal_id JOIN agents a ON a.id = p.agent_id"
    code = _code_col(dialect)
    for row in _bind(
        session,
        f"SELECT p.agent_id, p.action_type, {code}, count(*) {joined}, {_unnest(dialect)} "
        f"WHERE d.verdict = 'reject' AND {where} GROUP BY p.agent_id, p.action_type, {code}",
        params,
    ):
        by_code = reasons[(*day, row[0], row[1])]
        by_code[row[2]] = by_code.get(row[2], 0) + int(row[3])


def _times(
    session: Session,
    dialect: str,
    since: datetime | None,
    agent_id: str | None,
    action_type: str | None,
    bucket: bool,
    out: dict[tuple[Any, ...], dict[str, Any]],
) -> None:
    """Time-to-decision percentiles from ``decision_times``: on PostgreSQL percentile_cont, on
    SQLite two rows per percentile read at their rank from the (group, seconds) index."""
    where, params = ["1 = 1"], {}
    if since is not None:
        where.append("created_at >= :since")
        params["since"] = since
    if agent_id:
        where.append("agent_id = :agent")
        params["agent"] = agent_id
    if action_type:
        where.append("action_type = :action_type")
        params["action_type"] = action_type
    cond = " AND ".join(where)
    group = "day, agent_id, action_type" if bucket else "agent_id, action_type"
    nkeys = 3 if bucket else 2

    def fill(key: tuple[Any, ...], p50: float | None, p95: float | None) -> None:
        if key in out:
            out[key]["time_to_decision_p50_s"] = _round(p50)
            out[key]["time_to_decision_p95_s"] = _round(p95)

    if dialect == "postgresql":
        sql = (
            f"SELECT {group}, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), "
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) "
            f"FROM decision_times WHERE {cond} GROUP BY {group}"
        )
        for row in _bind(session, sql, params):
            fill(tuple(row[:nkeys]), row[nkeys], row[nkeys + 1])
        return
    if bucket:
        current: tuple[Any, ...] | None = None
        values: list[float] = []
        sql = f"SELECT {group}, seconds FROM decision_times WHERE {cond} ORDER BY {group}, seconds"
        stream = _bind(session, sql, params)
        for row in [*stream, None]:
            key = tuple(row[:nkeys]) if row is not None else None
            if key != current and current is not None:
                fill(current, *_percentiles(values))
            if key != current:
                current, values = key, []
            if row is not None:
                values.append(float(row[nkeys]))
        return
    # One count per group, then each percentile's two rows read at their rank off the
    # (agent, action type, seconds) index: a few hundred tiny statements, so on the driver's own
    # cursor (SQLAlchemy's per-statement work would cost more than SQLite's).
    sql = f"SELECT agent_id, action_type, count(*) FROM decision_times WHERE {cond} "
    sql += "GROUP BY agent_id, action_type"
    sizes = {(a, t): int(n) for a, t, n in _bind(session, sql, params) if (a, t) in out}
    raw = session.connection().connection.driver_connection
    cursor = raw.cursor()  # type: ignore[union-attr]
    # How SQLAlchemy stores a timestamp on SQLite (compared as text there).
    positional: list[Any] = []
    if since is not None:
        utc = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
        positional.append(utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds"))
    if agent_id:
        positional.append(agent_id)
    if action_type:
        positional.append(action_type)
    qmarks = cond.replace(":since", "?").replace(":agent", "?").replace(":action_type", "?")
    rank = (
        f"SELECT seconds FROM decision_times WHERE {qmarks} AND agent_id = ? AND action_type = ? "
        "ORDER BY seconds LIMIT 2 OFFSET ?"
    )
    try:
        for key, n in sizes.items():

            def at(lo: int, key: tuple[Any, ...] = key) -> list[float]:
                return [float(r[0]) for r in cursor.execute(rank, (*positional, *key, lo)).fetchall()]

            fill(key, _pick(n, 0.5, at), _pick(n, 0.95, at))
    finally:
        cursor.close()


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def summary(
    session: Session, since: datetime | None = None, agent: str | None = None, action_type: str | None = None
) -> dict[str, Any]:
    items = _fast(session, since, agent, action_type, bucket=False)
    # The latest completed run per agent and action type, in one read (runs are few).
    latest: dict[tuple[str, str], EvalRun] = {}
    runs = session.exec(
        select(EvalRun).where(EvalRun.status == "completed").order_by(EvalRun.created_at)  # type: ignore[arg-type]
    )
    for run in runs:
        latest[(run.agent_id, run.action_type)] = run
    for item in items:
        found = latest.get((item["agent_id"], item["action_type"]))
        item["scenario_pass_rate"] = found.pass_rate if found else None
        item["scenario_suite"] = found.suite if found else None
    items.sort(key=lambda i: (i["agent_name"] or "", i["action_type"]))
    return {"items": items, "next_cursor": None}


def timeseries(
    session: Session,
    since: datetime | None = None,
    agent: str | None = None,
    action_type: str | None = None,
) -> dict[str, Any]:
    items = _fast(session, since, agent, action_type, bucket=True)
    items.sort(key=lambda i: (i["bucket"], i["agent_name"] or "", i["action_type"]))
    return {"items": items, "next_cursor": None}
