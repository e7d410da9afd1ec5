"""Metrics: approval and rejection rates, reasons and time to decision, per agent and action type.

Charts are Altair (Vega-Lite, drawn by the browser): the numbers come from
/v1/metrics/summary and /v1/metrics/timeseries, which the backend computes in SQL.
"""

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from ui import client
from ui.common import unavailable

# The summary's fields as a person reads them, in this order.
COLUMNS = {
    "agent_name": "Agent",
    "action_type": "Action",
    "proposals": "Proposals",
    "approved": "Approved",
    "rejected": "Rejected",
    "approval_rate": "Approval rate",
    "rejection_rate": "Rejection rate",
    "escalation_rate": "Escalated",
    "time_to_decision_p50_s": "Median time to decision (s)",
    "time_to_decision_p95_s": "95th percentile time to decision (s)",
    "policy_violations": "Policy violations",
    "scenario_pass_rate": "Scenario pass rate",
}
# Counts are whole numbers: an axis that ticks 0.5 proposals reads as a bug.
COUNT_AXIS = alt.Axis(format="d", tickMinStep=1)


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
                y=alt.Y("sum(n):Q", title="proposals", axis=COUNT_AXIS),
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
                y=alt.Y(
                    "approval_rate:Q",
                    title="approval rate",
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                color=alt.Color("series:N", title="agent · action"),
                tooltip=["series", alt.Tooltip("approval_rate:Q", format=".0%"), "proposals"],
            )
        )
        st.altair_chart(chart, width="stretch")


def reasons_chart(summary: list[dict]) -> None:
    rows = [
        {"agent": row["agent_name"], "reason": code.replace("_", " ").capitalize(), "count": n}
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
            x=alt.X("sum(count):Q", title="rejections", axis=COUNT_AXIS),
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
reasons_chart(summary)
st.subheader("Per agent and action type")
shown = frame[[c for c in COLUMNS if c in frame]].rename(columns=COLUMNS)
percent = st.column_config.NumberColumn(format="percent")
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        **{COLUMNS[c]: percent for c in COLUMNS if c.endswith("_rate")},
        COLUMNS["time_to_decision_p50_s"]: st.column_config.NumberColumn(format="%.1f"),
        COLUMNS["time_to_decision_p95_s"]: st.column_config.NumberColumn(format="%.1f"),
    },
)
