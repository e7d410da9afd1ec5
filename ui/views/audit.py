"""Audit: searchable events, newest first, and whether the hash chain verifies.

Shown as people read it: names instead of ids, local times to the second, and what happened
in a sentence; the raw event stays one click away.
"""

import json
from typing import Any

import pandas as pd
import streamlit as st

from ui import client
from ui.common import local_time

st.title("Audit")
verify = client.get("/v1/audit/verify")
# Incremental: from the latest signed checkpoint (the full walk is `signoff audit verify --full`).
checkpoint = verify.get("checkpoint")
since = (
    f" (checked {verify.get('checked', 0):,} since the signed checkpoint at event {checkpoint['seq']:,}, "
    f"{local_time(checkpoint['at'])})"
    if checkpoint
    else ""
)
if verify["ok"]:
    st.success(
        f"Chain verified: {verify['events']:,} events, no broken link{since}.", icon=":material/verified:"
    )
else:
    st.text(f"Chain broken at {verify.get('first_bad')}: {verify.get('reason')}")  # plain text: untrusted
    st.error(f"Chain broken after {verify['events']:,} events{since}.", icon=":material/gpp_bad:")


@st.cache_data(ttl=60, show_spinner=False)
def agent_names(token_owner: str) -> dict[str, str]:
    """Agent ids to names (admins only; an auditor sees ids). Keyed by viewer, cached a minute."""
    try:
        return {a["id"]: a["name"] for a in client.get("/v1/agents", limit=200)["items"]}
    except client.ApiProblem:
        return {}


names = agent_names(str(st.user.get("sub") or ""))
by_name = {v: k for k, v in names.items()}


def who(actor: str) -> str:
    kind, _, ident = actor.partition(":")
    if kind == "agent":
        return f"agent {names.get(ident, ident)}"
    return ident if kind == "user" else actor


def what(subject: str) -> str:
    kind, _, ident = subject.partition(":")
    if kind == "agent":
        return f"agent {names.get(ident, ident)}"
    return f"{kind} {ident[-8:]}" if ident else subject


def details(data: Any) -> str:
    """The event's data in a line: reason and verdict first, the rest as key: value."""
    if not isinstance(data, dict):
        return "" if data is None else str(data)[:200]
    first = [k for k in ("verdict", "reason", "mode", "reason_codes", "comment") if data.get(k)]
    rest = [k for k in data if k not in first and not isinstance(data[k], dict | list)]

    def shown(value: Any) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    parts = [f"{k.replace('_', ' ')}: {shown(data[k])}" for k in [*first, *rest]]
    return "; ".join(parts)[:300]


def actor_filter(text: str) -> str | None:
    """ "ada", "user:ada" or an agent's name all find the same events."""
    text = text.strip()
    if not text or ":" in text:
        return text or None
    return f"agent:{by_name[text]}" if text in by_name else f"user:{text}"


c1, c2, c3 = st.columns(3)
subject = c1.text_input("Subject", placeholder="proposal:01H...", key="a_subject", bind="query-params")
actor = c2.text_input("Who", placeholder="ada, or an agent's name", key="a_actor", bind="query-params")
action = c3.text_input("Action", placeholder="dial.changed", key="a_action", bind="query-params")
filters = (subject, actor, action)
if st.session_state.get("a_filters") != filters:
    st.session_state["a_filters"] = filters
    st.session_state["a_pages"] = 1

events: list[dict] = []
cursor = None
for _ in range(st.session_state["a_pages"]):
    page = client.get(
        "/v1/audit",
        subject=subject.strip() or None,
        actor=actor_filter(actor),
        action=action.strip() or None,
        limit=100,
        cursor=cursor,
    )
    events += page["items"]
    cursor = page.get("next_cursor")
    if not cursor:
        break
if not events:
    st.info("No events match.")
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                "When": local_time(e["at"], seconds=True),
                "Who": who(e["actor"]),
                "Did": e["action"].replace(".", " ").replace("_", " "),
                "To": what(e["subject"]),
                "Details": details(e.get("data")),
                "Hash": e.get("hash", "")[:12],
            }
            for e in events
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={"Details": st.column_config.TextColumn(width="large")},
)
with st.expander("Raw events (JSON)"):
    st.code(json.dumps(events[:20], indent=2, ensure_ascii=False), language="json", height=300)
if cursor and st.button("Load more", key="a_more"):
    st.session_state["a_pages"] += 1
    st.rerun()
