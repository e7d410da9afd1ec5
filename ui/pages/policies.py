"""Policies (admin): the current Cedar text, its history, edit with validation, dry-run."""

import json

import pandas as pd
import streamlit as st

from ui import client
from ui.common import error, md_escape, unavailable

SAMPLE = {
    "agent": "refund-bot",
    "action_type": "refund",
    "payload": {
        "customer_id": "cus_1",
        "order_id": "ord_1",
        "amount_usd": 250,
        "currency": "USD",
        "reason": "damaged",
    },
    "context": {},
}

st.title("Policies")
try:
    current = client.get("/v1/policies")
except client.NotAvailable:
    unavailable("Policy management")
    st.stop()

st.caption(
    md_escape(
        f"Version {current['version']} by {current.get('created_by', '?')} at "
        f"{str(current.get('created_at', ''))[:19]}: {current.get('comment', '')}"
    )
)
view, edit, dry, history = st.tabs(["Current", "Edit", "Dry-run", "History"])
with view:
    st.code(current["text"], language="cedar", line_numbers=True)
    if current.get("policy_ids"):
        st.text("policy ids: " + ", ".join(current["policy_ids"]))
with edit:
    text = st.text_area("Cedar", current["text"], height=400, key="policy_text")
    comment = st.text_input("What changed and why", key="policy_comment")
    if st.button("Validate and save", type="primary", key="policy_save"):
        try:
            saved = client.put("/v1/policies", {"text": text, "comment": comment})
            st.success(f"Saved as version {saved['version']}.")
        except client.ApiProblem as problem:
            line = problem.extra.get("line")
            where = f" at line {line}, column {problem.extra.get('column')}" if line else ""
            st.error(md_escape(f"Not saved{where}: {problem.message}"))
            if line:
                lines = text.splitlines()
                start = max(0, int(line) - 3)
                excerpt = [
                    f"{'>' if n + 1 == int(line) else ' '} {n + 1:4d} | {lines[n]}"
                    for n in range(start, min(len(lines), int(line) + 2))
                ]
                st.code("\n".join(excerpt), language=None)
with dry:
    draft = st.toggle("Test the edited text (otherwise the current version)", key="dry_draft")
    sample = st.text_area(
        "Sample proposal (JSON)", json.dumps(SAMPLE, indent=2), height=260, key="dry_sample"
    )
    groups = st.text_input("Reviewer groups (comma separated, optional)", key="dry_groups")
    if st.button("Dry-run", key="dry_run"):
        try:
            body = {
                "text": st.session_state.get("policy_text") if draft else None,
                "proposal": json.loads(sample),
                "reviewer": {"groups": [g.strip() for g in groups.split(",") if g.strip()]}
                if groups.strip()
                else None,
            }
            result = client.post("/v1/policies/test", body)
            st.metric("Outcome", result["outcome"])
            st.json(result)
        except json.JSONDecodeError as exc:
            st.error(f"Not valid JSON: {exc.msg} (line {exc.lineno})")
        except client.NotAvailable:
            unavailable("Dry-run")
        except client.ApiProblem as problem:
            error(problem)
with history:
    try:
        versions = client.get("/v1/policies/versions", limit=50)["items"]
    except client.NotAvailable:
        versions = []
        unavailable("Policy history")
    if versions:
        st.dataframe(pd.DataFrame(versions), hide_index=True, width="stretch")
        pick = st.selectbox("Show version", [v["version"] for v in versions], key="policy_version")
        st.code(client.get(f"/v1/policies/versions/{pick}")["text"], language="cedar", line_numbers=True)
