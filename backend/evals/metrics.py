"""The metrics the seed's Table 2 asks for, per agent and action type, computed in SQL.

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

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session, select

from backend.agents import lookup
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

    def pick(q: float) -> float:
        pos = q * (len(values) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(values) - 1)
        return values[lo] + (values[hi] - values[lo]) * (pos - lo)

    return pick(0.5), pick(0.95)


def _aggregate(
    session: Session,
    since: datetime | None,
    until: datetime | None,
    agent: str | None,
    action_type: str | None,
    bucket: bool,
) -> list[dict[str, Any]]:
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


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def summary(
    session: Session, since: datetime | None = None, agent: str | None = None, action_type: str | None = None
) -> dict[str, Any]:
    items = _aggregate(session, since, None, agent, action_type, bucket=False)
    for item in items:
        run = session.exec(
            select(EvalRun)
            .where(
                EvalRun.agent_id == item["agent_id"],
                EvalRun.action_type == item["action_type"],
                EvalRun.status == "completed",
            )
            .order_by(EvalRun.created_at.desc())  # type: ignore[attr-defined]
            .limit(1)
        ).first()
        item["scenario_pass_rate"] = run.pass_rate if run else None
        item["scenario_suite"] = run.suite if run else None
    items.sort(key=lambda i: (i["agent_name"] or "", i["action_type"]))
    return {"items": items, "next_cursor": None}


def timeseries(
    session: Session,
    since: datetime | None = None,
    agent: str | None = None,
    action_type: str | None = None,
) -> dict[str, Any]:
    items = _aggregate(session, since, None, agent, action_type, bucket=True)
    items.sort(key=lambda i: (i["bucket"], i["agent_name"] or "", i["action_type"]))
    return {"items": items, "next_cursor": None}
