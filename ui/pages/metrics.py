"""Metrics: approval and rejection rates, reasons and time to decision, per agent and action type."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from ui import client
from ui.common import unavailable

st.title("Metrics")
days = st.segmented_control("Period", [1, 7, 30, 90], default=7, format_func=lambda d: f"{d} d", key="m_days")
since = (datetime.now(UTC) - timedelta(days=days or 7)).isoformat()
try:
    summary = client.get("/v1/metrics/summary", since=since)["items"]
except client.NotAvailable:
    unavailable("Metrics")
    st.stop()
if not summary:
    st.info("No decided proposals in this period yet.")
    st.stop()
frame = pd.DataFrame(summary)
cols = [
    c
    for c in (
        "agent_name",
        "action_type",
        "proposals",
        "approved",
        "rejected",
        "approval_rate",
        "escalation_rate",
        "time_to_decision_p50_s",
        "time_to_decision_p95_s",
        "policy_violations",
        "scenario_pass_rate",
    )
    if c in frame
]
st.dataframe(frame[cols], hide_index=True, width="stretch")
reasons = [
    {"agent": row.get("agent_name"), "reason": code, "count": n}
    for row in summary
    for code, n in (row.get("rejections_by_reason") or {}).items()
]
if reasons:
    st.subheader("Rejections by reason")
    st.bar_chart(pd.DataFrame(reasons), x="reason", y="count", color="agent")
try:
    series = client.get("/v1/metrics/timeseries", since=since, bucket="day")["items"]
except client.NotAvailable:
    series = []
if series:
    st.subheader("Approval rate by day")
    st.line_chart(pd.DataFrame(series), x="bucket", y="approval_rate", color="agent_name")
