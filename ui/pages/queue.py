"""Queue: pending proposals, nearest deadline first, refreshing itself without losing place."""

from typing import Any

import pandas as pd
import streamlit as st

from ui import client
from ui.common import format_value, guarded, parse_ts, time_left
from ui.state import action_types

REFRESH_SECONDS = 15
PAGE_SIZE = 50

st.title("Queue")
types = action_types()
risk_of = {name: t.get("risk", "") for name, t in types.items()}

f1, f2, f3, f4 = st.columns([2, 2, 2, 3])
action_type = f1.selectbox("Action type", ["All", *types], key="q_action_type")
risk = f2.selectbox("Risk", ["All", "low", "medium", "high", "critical"], key="q_risk")
agent = f3.text_input("Agent", key="q_agent", placeholder="name or id")
text = f4.text_input("Search summaries", key="q_text", placeholder="order, customer...")
filters = (action_type, agent, text)
if st.session_state.get("q_filters") != filters:
    # New filters start from the first page.
    st.session_state["q_filters"] = filters
    st.session_state["q_cursors"] = [None]


def _row(item: dict[str, Any]) -> dict[str, Any]:
    payload = item.get("payload") or {}
    amount = next((k for k in payload if "amount" in k), None)
    left = time_left(item["expires_at"])
    at = parse_ts(item["expires_at"])
    soon = at is not None and (at - pd.Timestamp.now(tz="UTC")).total_seconds() < 3600
    claim = item.get("claim") or {}
    return {
        "due": ("⚠ " if soon else "") + left,
        "summary": item["summary"],
        "amount": format_value(payload, amount, payload[amount]) if amount else "",
        "action": item["action_type"],
        "risk": risk_of.get(item["action_type"], ""),
        "agent": item.get("agent_name") or item["agent_id"],
        "claimed by": claim.get("name") or "",
        "flags": ", ".join(item.get("flags") or []),
        "id": item["id"],
    }


@st.fragment(run_every=REFRESH_SECONDS)
def queue_table() -> None:
    guarded(_queue_table)


def _queue_table() -> None:
    header = st.container()  # filled last: the table is what the reviewer waits for
    cursors: list[str | None] = st.session_state["q_cursors"]
    page = client.get(
        "/v1/queue",
        action_type=None if action_type == "All" else action_type,
        agent=agent.strip() or None,
        q=text.strip() or None,
        limit=PAGE_SIZE,
        cursor=cursors[-1],
    )
    items = [i for i in page["items"] if risk == "All" or risk_of.get(i["action_type"]) == risk]
    if not items:
        st.info("Nothing waiting here. New proposals appear on their own.", icon=":material/done_all:")
    else:
        frame = pd.DataFrame([_row(i) for i in items])
        # A fresh key once a row has been opened, so coming back does not reopen it.
        generation = st.session_state.setdefault("q_table_gen", 0)
        picked = st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            on_select="rerun",
            selection_mode="single-row",
            key=f"queue_table_{generation}",
            column_config={"id": st.column_config.TextColumn("id", width="small")},
        )
        rows = picked.selection.rows if picked else []
        if rows:
            st.session_state["q_table_gen"] = generation + 1
            st.session_state["current"] = frame.iloc[rows[0]]["id"]
            st.switch_page("pages/review.py")
    p1, p2, _ = st.columns([1, 1, 6])
    prev = len(cursors) > 1 and p1.button("Previous page", key="q_prev")
    more = bool(page.get("next_cursor")) and p2.button("Next page", key="q_next")
    counts = _counts(None if action_type == "All" else action_type)
    if counts is not None:
        c1, c2, c3 = header.columns(3)
        c1.metric("Pending", f"{counts['pending']:,}")
        c2.metric("Due within the hour", f"{counts['expiring_soon']:,}")
        c3.metric("Being reviewed", f"{counts['claimed']:,}")
    if prev:
        cursors.pop()
        st.rerun(scope="fragment")
    if more:
        cursors.append(page["next_cursor"])
        st.rerun(scope="fragment")


def _counts(kind: str | None) -> dict[str, Any] | None:
    try:
        return client.get("/v1/queue/counts", action_type=kind)
    except client.NotAvailable:
        return None


if st.button("Review next", type="primary", icon=":material/play_arrow:", key="review_next"):
    st.session_state["current"] = None
    st.switch_page("pages/review.py")
queue_table()
