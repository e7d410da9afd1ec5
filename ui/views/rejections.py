"""Decided proposals (rejected by default) with filters; annotate them for eval data."""

from typing import Any

import pandas as pd
import streamlit as st

from ui import client
from ui.common import error, format_value, local_time, md_escape, show_bidi, unavailable
from ui.review_parts import action_table, decisions, evidence
from ui.state import action_types

STATUSES = ["rejected", "approved", "executed", "failed", "expired", "cancelled", "observed"]
SEVERITIES = [None, "low", "medium", "high", "critical"]


def _amount(payload: dict[str, Any]) -> str:
    field = next((k for k in payload if "amount" in k), None)
    return format_value(payload, field, payload[field]) if field else ""


st.title("Decided")
types = action_types()
c1, c2, c3, c4 = st.columns([2, 2, 2, 3])
status = c1.selectbox("Status", STATUSES, key="d_status")
kind = c2.selectbox("Action type", ["All", *types], key="d_type")
agent = c3.text_input("Agent", key="d_agent")
text = c4.text_input("Search summaries", key="d_text")

page = client.get(
    "/v1/queue",
    status=status,
    action_type=None if kind == "All" else kind,
    agent=agent.strip() or None,
    q=text.strip() or None,
    limit=100,
)
items: list[dict[str, Any]] = page["items"]
if not items:
    st.info("Nothing here with these filters.")
    st.stop()
rows = pd.DataFrame(
    [
        {
            "Summary": i["summary"],
            "Amount": _amount(i.get("payload") or {}),
            "Action": i["action_type"],
            "Agent": i.get("agent_name") or i["agent_id"],
            "Reviewer": i.get("reviewer_name") or "",
            "Status": i["status"],
            "Due": local_time(i.get("expires_at")),
        }
        for i in items
    ]
)
if not rows["Reviewer"].any():
    rows = rows.drop(columns=["Reviewer"])  # older servers' queue rows do not name the reviewer
st.dataframe(rows, hide_index=True, width="stretch")
by_id = {i["id"]: i for i in items}
pid = st.selectbox(
    "Open",
    list(by_id),
    format_func=lambda i: show_bidi(f"{by_id[i]['summary'][:90]}  ({i[-6:]})"),
    key="d_open",
)
p = client.get(f"/v1/proposals/{pid}")
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Proposed action")
    action_table(p["payload"], types.get(p["action_type"], {}).get("payload_schema") or {})
    st.subheader("Evidence")
    evidence(p.get("evidence") or [], pid)
with right:
    st.subheader("Decisions")
    decisions(p, types.get(p["action_type"], {}))
    st.subheader("Annotations")
    try:
        notes = client.get(f"/v1/proposals/{pid}/annotations")["items"]
    except client.NotAvailable:
        unavailable("Annotating")
        st.stop()
    for note in notes:
        with st.container(border=True):
            st.text(
                show_bidi(f"{note.get('author_name') or note['author_sub']} · {note.get('severity') or '-'}")
            )
            st.text(show_bidi("labels: " + (", ".join(note.get("labels") or []) or "-")))
            st.text(show_bidi(note.get("note") or ""))
    with st.form(f"annotate_{pid}", clear_on_submit=True):
        labels = st.text_input(
            "Labels (comma separated)", placeholder="hallucinated_order, tone", key="a_labels"
        )
        severity = st.selectbox("Severity", SEVERITIES, format_func=lambda s: s or "none", key="a_severity")
        body = st.text_area("Note", key="a_note")
        if st.form_submit_button("Add annotation", type="primary", key="a_submit"):
            try:
                client.post(
                    f"/v1/proposals/{pid}/annotations",
                    {
                        "labels": [x.strip() for x in labels.split(",") if x.strip()],
                        "severity": severity,
                        "note": body,
                    },
                )
                st.toast(f"Annotated {md_escape(pid[-6:])}.")
                st.rerun()
            except client.NotAvailable:
                unavailable("Annotating")
            except client.ApiProblem as problem:
                error(problem)
