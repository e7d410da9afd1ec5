"""Queue: the reviewer's inbox, nearest deadline first, refreshing itself without losing place.

Each row opens its case by id (the row's own button carries the id), so a refresh that
reorders the list can never open a different case than the one clicked.
"""

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from ui import client
from ui.common import format_value, md_escape, parse_ts, show_bidi, time_left
from ui.state import action_types

REFRESH_SECONDS = 15
# A screenful: each row is a few elements, and 25 draw in about half the time of 50.
PAGE_SIZE = 25
VIEWS = {
    "decidable": "Cases I can decide",
    "mine": "Assigned to me",
    "group": "Assigned to my group",
    "all": "All pending",
}

st.title("Queue")
types = action_types()
risk_of = {name: t.get("risk", "") for name, t in types.items()}

f0, f1, f2, f3, f4 = st.columns([2, 2, 1, 2, 3])
view = f0.selectbox("Show", list(VIEWS), format_func=VIEWS.get, key="view", bind="query-params")
action_type = f1.selectbox("Action type", ["All", *types], key="type", bind="query-params")
risk = f2.selectbox("Risk", ["All", "low", "medium", "high", "critical"], key="risk", bind="query-params")
agent = f3.text_input("Agent", key="agent", placeholder="name or id", bind="query-params")
text = f4.text_input("Search summaries", key="q", placeholder="order, customer...", bind="query-params")
filters = (view, action_type, agent, text)
if st.session_state.get("q_filters") != filters:
    # New filters start from the first page.
    st.session_state["q_filters"] = filters
    st.session_state["q_cursors"] = [None]
    st.session_state["q_focus"] = 0


def open_case(pid: str) -> None:
    st.session_state["current"] = pid
    st.session_state["q_open"] = pid


def move(step: int) -> None:
    st.session_state["q_focus"] = max(0, st.session_state.get("q_focus", 0) + step)


def open_focused() -> None:
    ids = st.session_state.get("q_ids") or []
    if ids:
        open_case(ids[min(st.session_state.get("q_focus", 0), len(ids) - 1)])


def _due(item: dict[str, Any]) -> str:
    """Time left, coloured by urgency (our own Markdown, not the agent's)."""
    at = parse_ts(item["expires_at"])
    left = time_left(item["expires_at"])
    seconds = (at - datetime.now(UTC)).total_seconds() if at else 1e9
    colour = "red" if seconds < 3600 else "orange" if seconds < 4 * 3600 else "gray"
    return f":{colour}[{md_escape(left)}]"


def _flags(item: dict[str, Any]) -> str:
    marks = [md_escape(f) for f in item.get("flags") or []]
    if item.get("escalated"):
        marks.insert(0, ":red[escalated]")
    need = item.get("approvals_required")
    if need and int(need) > 1:
        marks.append(f"{len(item.get('approvals') or [])} of {need} approvals")
    claim = item.get("claim") or {}
    if claim:
        marks.append(md_escape(f"with {claim.get('name') or claim.get('by')}"))
    return " · ".join(marks)


# Column widths in pixels; the summary takes the rest. One flex row per case, four elements in
# it: the browser draws a 25-row page in about half the time of one made of st.columns (a
# block per column, five per row), which was most of the first page's wait.
DUE_W, AMOUNT_W, META_W = 90, 120, 330


def _meta(item: dict[str, Any]) -> str:
    """Action type, agent and flags in one cell (our Markdown around escaped values)."""
    who = md_escape(show_bidi(f"{item['action_type']} · {item.get('agent_name') or item['agent_id']}"))
    flags = _flags(item)
    return f"{who} · {flags}" if flags else who


def _row(n: int, item: dict[str, Any], focus: int) -> None:
    payload = item.get("payload") or {}
    amount = next((k for k in payload if "amount" in k), None)
    with st.container(key=f"qrow_{item['id']}", horizontal=True, vertical_alignment="center", wrap=False):
        st.markdown(_due(item), width=DUE_W)
        mark = "▶ " if n == focus else ""
        st.button(
            mark + md_escape(show_bidi(item["summary"] or "(no summary)")),
            key=f"open_{item['id']}",
            type="tertiary",
            on_click=open_case,
            args=(item["id"],),
            width="stretch",
        )
        st.text(format_value(payload, amount, payload[amount]) if amount else "", width=AMOUNT_W)
        st.markdown(_meta(item), width=META_W)


def _titles() -> None:
    with st.container(key="qtitles", horizontal=True, wrap=False):
        st.caption("Due", width=DUE_W)
        st.caption("Summary", width="stretch")
        st.caption("Amount", width=AMOUNT_W)
        st.caption("Action · agent · flags", width=META_W)


@st.fragment(run_every=REFRESH_SECONDS)
def queue_table() -> None:
    try:
        _queue_table()
    except (client.SessionExpired, client.LoginRefused):
        raise
    except client.ApiProblem as problem:
        st.error(md_escape(problem.message), icon=":material/error:")


def _params() -> dict[str, Any]:
    params: dict[str, Any] = {
        "action_type": None if action_type == "All" else action_type,
        "agent": agent.strip() or None,
        "q": text.strip() or None,
    }
    if view == "decidable":
        params["decidable"] = "true"
    elif view in ("mine", "group"):
        params["assigned"] = "me" if view == "mine" else "group"
    return params


def _queue_table() -> None:
    if opened := st.session_state.pop("q_open", None):
        st.session_state["current"] = opened
        # The target's query string is given, not cleared: Streamlit refuses to clear one that
        # holds this page's bound filters (a chosen view crashed the switch).
        st.switch_page("views/review.py", query_params={"id": opened})
    header = st.container()  # filled last: the rows are what the reviewer waits for
    cursors: list[str | None] = st.session_state["q_cursors"]
    page = client.get("/v1/queue", **_params(), limit=PAGE_SIZE, cursor=cursors[-1])
    items = [i for i in page["items"] if risk == "All" or risk_of.get(i["action_type"]) == risk]
    st.session_state["q_ids"] = [i["id"] for i in items]
    focus = min(st.session_state.get("q_focus", 0), max(len(items) - 1, 0))
    if not items:
        st.info("Nothing waiting here. New cases appear on their own.", icon=":material/done_all:")
    else:
        _titles()
        for n, item in enumerate(items):
            _row(n, item, focus)
    p1, p2, _ = st.columns([1, 1, 6])
    prev = len(cursors) > 1 and p1.button("Previous page", key="q_prev")
    more = bool(page.get("next_cursor")) and p2.button("Next page", key="q_next")
    counts = _counts(None if action_type == "All" else action_type)
    if counts is not None:
        done = st.session_state.get("decided_here", 0)
        with header.container(key="qstats", horizontal=True, wrap=False):
            _stat("Pending", f"{counts['pending']:,}")
            _stat("Due within the hour", f"{counts['expiring_soon']:,}")
            _stat("Being reviewed", f"{counts['claimed']:,}")
            _stat("Decided by you today", f"{done} of {done + counts['pending']:,}")
        if view == "decidable":
            header.caption(
                "Showing the cases you may decide. Cases that need another group's approval wait for "
                "those reviewers: pick “All pending” to see them."
            )
    if prev:
        cursors.pop()
        st.rerun(scope="fragment")
    if more:
        cursors.append(page["next_cursor"])
        st.rerun(scope="fragment")


def _stat(name: str, value: str) -> None:
    """A header figure. Not st.metric: its first use on a page loads the charting code for
    sparklines (a few hundred milliseconds of the first queue page on a busy machine)."""
    with st.container(width="stretch", gap=None):
        st.caption(name)
        st.markdown(f"### {value}", anchors=False)


def _counts(kind: str | None) -> dict[str, Any] | None:
    try:
        return client.get("/v1/queue/counts", action_type=kind)
    except client.NotAvailable:
        return None


@st.dialog("Keyboard shortcuts")
def shortcuts() -> None:
    st.table(
        {
            "key": ["j / k", "o", "n", "a", "x", "n", "i"],
            "does": [
                "next / previous row",
                "open the highlighted case",
                "review next",
                "approve (review screen)",
                "reject (review screen)",
                "skip (review screen)",
                "reject as prompt injection (when flagged)",
            ],
        }
    )


bar = st.container(horizontal=True)
if bar.button(
    "Review next (n)", type="primary", icon=":material/play_arrow:", key="review_next", shortcut="n"
):
    st.session_state["current"] = None
    st.switch_page("views/review.py", query_params={})
bar.button("Down (j)", key="q_down", shortcut="j", on_click=move, args=(1,), type="tertiary")
bar.button("Up (k)", key="q_up", shortcut="k", on_click=move, args=(-1,), type="tertiary")
bar.button("Open (o)", key="q_enter", shortcut="o", on_click=open_focused, type="tertiary")
if bar.button("Shortcuts (h)", key="q_help", shortcut="h", type="tertiary"):
    shortcuts()
queue_table()
