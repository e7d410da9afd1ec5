"""Metrics: approval and rejection rates, reasons and time to decision, per agent and action type.

Charts are Altair (Vega-Lite, drawn by the browser): the numbers come from
/v1/metrics/summary and /v1/metrics/timeseries, which the backend computes in SQL.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui import client
from ui.common import unavailable

COLUMNS = (
    "agent_name",
    "action_type",
    "proposals",
    "approved",
    "rejected",
    "approval_rate",
    "rejection_rate",
    "escalation_rate",
    "time_to_decision_p50_s",
    "time_to_decision_p95_s",
    "policy_violations",
    "scenario_pass_rate",
)


def by_day(series: list[dict]) -> None:
    frame = pd.DataFrame(series)
    frame["day"] = pd.to_datetime(frame["bucket"])
    frame["series"] = frame["agent_name"] + " · " + frame["action_type"]
    volume = frame.melt(
        id_vars=["day", "series"], value_vars=["approved", "rejected"], var_name="verdict", value_name="n"
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Decisions by day")
        chart = (
            alt.Chart(volume)
            .mark_bar()
            .encode(
                x=alt.X("yearmonthdate(day):T", title="day"),
                y=alt.Y("sum(n):Q", title="proposals"),
                color=alt.Color(
                    "verdict:N",
                    scale=alt.Scale(domain=["approved", "rejected"], range=["#2e7d32", "#c62828"]),
                ),
                tooltip=["series", "verdict", "n"],
            )
        )
        st.altair_chart(chart, width="stretch")
    with right:
        st.subheader("Approval rate by day")
        rated = frame.dropna(subset=["approval_rate"])
        chart = (
            alt.Chart(rated)
            .mark_line(point=True)
            .encode(
                x=alt.X("yearmonthdate(day):T", title="day"),
                y=alt.Y("approval_rate:Q", title="approval rate", axis=alt.Axis(format="%")),
                color=alt.Color("series:N", title="agent · action"),
                tooltip=["series", alt.Tooltip("approval_rate:Q", format=".0%"), "proposals"],
            )
        )
        st.altair_chart(chart, width="stretch")


# The alert thresholds of deploy/prometheus/alerts.yml, drawn on the charts below.
SPIKE_FACTOR = 2.0  # tool calls per task: twice the period's mean
DRIFT_BAND = (0.5, 1.5)  # tokens per task: half to one and a half times the period's mean
ESCALATION_FLOOR = 0.05  # escalation rate: twice the period's mean, at least 5 %
PASS_GATE = 0.9  # scenario pass rate below the gate
DECISION_SLA_S = 3600  # time to decision (p95) against the review SLA


def _control_chart(
    frame: pd.DataFrame, field: str, title: str, thresholds: dict[str, float], fmt: str = ""
) -> Any:
    """One Table 2 control by day per agent and action type, its thresholds as dashed rules."""
    data = frame.dropna(subset=[field])
    axis = alt.Axis(format=fmt) if fmt else alt.Axis()
    lines = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonthdate(day):T", title="day"),
            y=alt.Y(f"{field}:Q", title=title, axis=axis),
            color=alt.Color("series:N", title="agent · action"),
            tooltip=["series", alt.Tooltip(f"{field}:Q", format=fmt or ".2f")],
        )
    )
    rules = pd.DataFrame([{"threshold": name, "value": value} for name, value in thresholds.items()])
    drawn = (
        alt.Chart(rules)
        .mark_rule(color="#c62828", strokeDash=[6, 4])
        .encode(y="value:Q", tooltip=["threshold", alt.Tooltip("value:Q", format=fmt or ".2f")])
    )
    return lines + drawn


def table2_over_time(series: list[dict]) -> None:
    """The seed's Table 2 controls over time, with the alert thresholds drawn."""
    frame = pd.DataFrame(series)
    frame["day"] = pd.to_datetime(frame["bucket"])
    frame["series"] = frame["agent_name"] + " · " + frame["action_type"]
    weights = frame["proposals"].clip(lower=1)

    def mean(field: str) -> float | None:
        known = frame[field].notna()
        if not known.any():
            return None
        return float((frame.loc[known, field] * weights[known]).sum() / weights[known].sum())

    st.subheader("Table 2 controls over time")
    charts: list[tuple[str, Any]] = []
    if (tools := mean("tool_calls_per_task")) is not None:
        limits = {"tool-call spike": SPIKE_FACTOR * tools}
        chart = _control_chart(frame, "tool_calls_per_task", "tool calls per task", limits)
        charts.append(("table2_tool_calls", chart))
    if (tokens := mean("tokens_per_task")) is not None:
        low, high = DRIFT_BAND
        limits = {"token drift (low)": low * tokens, "token drift (high)": high * tokens}
        charts.append(("table2_tokens", _control_chart(frame, "tokens_per_task", "tokens per task", limits)))
    if (escalations := mean("escalation_rate")) is not None:
        limits = {"escalation-rate change": max(SPIKE_FACTOR * escalations, ESCALATION_FLOOR)}
        charts.append(
            ("table2_escalation", _control_chart(frame, "escalation_rate", "escalation rate", limits, "%"))
        )
    chart = _control_chart(frame, "policy_violations", "policy violations", {"any violation": 1})
    charts.append(("table2_violations", chart))
    if frame["time_to_decision_p95_s"].notna().any():
        limits = {"review SLA": DECISION_SLA_S}
        chart = _control_chart(frame, "time_to_decision_p95_s", "p95 to decision (s)", limits)
        charts.append(("table2_decision", chart))
    for row_start in range(0, len(charts), 2):
        pair = charts[row_start : row_start + 2]
        for column, (key, chart) in zip(st.columns(2, gap="large"), pair, strict=False):
            with column, st.container(key=key):
                st.altair_chart(chart, width="stretch")


def pass_rates(summary: list[dict]) -> None:
    """The latest scenario pass rate per agent and action type against the gate."""
    rows = [r for r in summary if r.get("scenario_pass_rate") is not None]
    if not rows:
        return
    data = pd.DataFrame(rows)
    data["series"] = data["agent_name"] + " · " + data["action_type"]
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("series:N", title=None),
            x=alt.X(
                "scenario_pass_rate:Q",
                title="scenario pass rate",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
            tooltip=["series", alt.Tooltip("scenario_pass_rate:Q", format=".0%")],
        )
    )
    gate_line = pd.DataFrame([{"gate": PASS_GATE}])
    gate = alt.Chart(gate_line).mark_rule(color="#c62828", strokeDash=[6, 4]).encode(x="gate:Q")
    st.subheader("Scenario pass rate (latest run) and the gate")
    with st.container(key="table2_pass_rate"):
        st.altair_chart(bars + gate, width="stretch")


def reasons_chart(summary: list[dict]) -> None:
    rows = [
        {"agent": row["agent_name"], "reason": code, "count": n}
        for row in summary
        for code, n in (row.get("rejections_by_reason") or {}).items()
    ]
    st.subheader("Rejections by reason")
    if not rows:
        st.caption("No rejections in this period.")
        return
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            y=alt.Y("reason:N", sort="-x", title=None),
            x=alt.X("sum(count):Q", title="rejections"),
            color=alt.Color("agent:N"),
            tooltip=["agent", "reason", "count"],
        )
    )
    st.altair_chart(chart, width="stretch")


st.title("Metrics")
days = st.segmented_control("Period", [1, 7, 30, 90], default=7, format_func=lambda d: f"{d} d", key="m_days")
since = (datetime.now(UTC) - timedelta(days=days or 7)).isoformat()
try:
    summary = client.get("/v1/metrics/summary", since=since)["items"]
except client.NotAvailable:
    unavailable("Metrics")
    st.stop()
if not summary:
    st.info("No proposals in this period yet.")
    st.stop()
frame = pd.DataFrame(summary)
totals = frame[["proposals", "approved", "rejected", "policy_violations"]].sum()
decided = int(totals["approved"] + totals["rejected"])
c1, c2, c3, c4 = st.columns(4)
c1.metric("Proposals", f"{int(totals['proposals']):,}")
c2.metric("Approval rate", f"{totals['approved'] / decided:.0%}" if decided else "-")
c3.metric("Rejected", f"{int(totals['rejected']):,}")
c4.metric("Policy violations", f"{int(totals['policy_violations']):,}")
series = client.get("/v1/metrics/timeseries", since=since, bucket="day")["items"]
if series:
    by_day(series)
    table2_over_time(series)
pass_rates(summary)
reasons_chart(summary)
st.subheader("Per agent and action type")
st.dataframe(
    frame[[c for c in COLUMNS if c in frame]],
    hide_index=True,
    width="stretch",
    column_config={
        "approval_rate": st.column_config.NumberColumn(format="percent"),
        "rejection_rate": st.column_config.NumberColumn(format="percent"),
        "escalation_rate": st.column_config.NumberColumn(format="percent"),
        "scenario_pass_rate": st.column_config.NumberColumn(format="percent"),
        "time_to_decision_p50_s": st.column_config.NumberColumn("p50 to decision (s)", format="%.1f"),
        "time_to_decision_p95_s": st.column_config.NumberColumn("p95 to decision (s)", format="%.1f"),
    },
)
