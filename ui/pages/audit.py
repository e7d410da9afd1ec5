"""Audit: searchable events, newest first, and whether the hash chain verifies."""

import json

import pandas as pd
import streamlit as st

from ui import client

st.title("Audit")
verify = client.get("/v1/audit/verify")
# Incremental: from the latest signed checkpoint (the full walk is `signoff audit verify --full`).
checkpoint = verify.get("checkpoint")
since = (
    f" (checked {verify.get('checked', 0):,} since the signed checkpoint at event {checkpoint['seq']:,}, "
    f"{checkpoint['at'][:19].replace('T', ' ')} UTC)"
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

c1, c2, c3 = st.columns(3)
subject = c1.text_input("Subject", placeholder="proposal:01H...", key="a_subject")
actor = c2.text_input("Actor", placeholder="user:ada-admin", key="a_actor")
action = c3.text_input("Action", placeholder="dial.changed", key="a_action")
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
        actor=actor.strip() or None,
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
                "at": e["at"],
                "actor": e["actor"],
                "action": e["action"],
                "subject": e["subject"],
                "data": json.dumps(e.get("data"), ensure_ascii=False)[:300],
                "hash": e.get("hash", "")[:12],
            }
            for e in events
        ]
    ),
    hide_index=True,
    width="stretch",
)
if cursor and st.button("Load more", key="a_more"):
    st.session_state["a_pages"] += 1
    st.rerun()
