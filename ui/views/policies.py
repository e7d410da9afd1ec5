"""Policies (admin): the current Cedar text, its history, edit with validation, dry-run.

The editor and the dry-run sit on one tab on purpose: an admin tries the edited text on a
sample proposal before saving it, and the backend (Cedar) is the only validator.
"""

import json
from typing import Any

import pandas as pd
import streamlit as st

from ui import client
from ui.common import error, md_escape, unavailable

SAMPLE_PAYLOAD = {
    "customer_id": "cus_1",
    "order_id": "ord_1",
    "amount_usd": 250,
    "currency": "USD",
    "reason": "damaged",
}
QUESTIONS = (
    ("propose", "May the agent propose it?"),
    ("execute", "May the agent execute it without a human?"),
    ("approve", "May this reviewer approve it?"),
)


def excerpt(text: str, line: int, column: int | None) -> str:
    """The lines around `line`, the failing one marked, and a caret under its column."""
    lines = text.splitlines()
    out: list[str] = []
    for n in range(max(0, line - 3), min(len(lines), line + 2)):
        out.append(f"{'>' if n + 1 == line else ' '} {n + 1:4d} | {lines[n]}")
        if n + 1 == line and column:
            out.append(" " * (8 + column) + "^")
    return "\n".join(out)


def policy_error(problem: client.ApiProblem, text: str, what: str) -> None:
    """Cedar's message, and where it points in the text (PUT/test 422 carry line and column)."""
    line, column = problem.extra.get("line"), problem.extra.get("column")
    if not line:
        st.error(md_escape(f"{what}: {problem.message}"), icon=":material/error:")
        return
    where = f"line {line}" + (f", column {column}" if column else "")
    st.error(md_escape(f"{what}: {where}: {problem.message}"), icon=":material/error:")
    st.code(excerpt(text, int(line), int(column) if column else None), language=None)


def dry_run_result(result: dict[str, Any]) -> None:
    st.metric("Outcome", result["outcome"])
    rows = [
        {
            "question": label,
            "decision": (result.get(key) or {}).get("decision"),
            "policy ids": ", ".join((result.get(key) or {}).get("policy_ids") or []),
        }
        for key, label in QUESTIONS
        if result.get(key)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    version = result.get("version")
    st.caption(f"Judged under {'the edited text' if version is None else f'version {version}'}.")


def sample_proposal(agents: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A sample built from the real agents and action types, the payload as JSON."""
    c1, c2 = st.columns(2)
    agent = c1.selectbox("Agent", [a["name"] for a in agents] or ["(no agents)"], key="dry_agent")
    action_type = c2.text_input("Action type", "refund", key="dry_type")
    payload = st.text_area(
        "Payload (JSON)", json.dumps(SAMPLE_PAYLOAD, indent=2), height=180, key="dry_payload"
    )
    context = st.text_area("Context (JSON)", "{}", height=68, key="dry_context")
    try:
        return {
            "agent": agent,
            "action_type": action_type,
            "payload": json.loads(payload),
            "context": json.loads(context or "{}"),
        }
    except json.JSONDecodeError as exc:
        st.error(f"Not valid JSON: {exc.msg} (line {exc.lineno})")
        return None


def editor(current: dict[str, Any]) -> None:
    text = st.text_area("Cedar", current["text"], height=420, key="policy_text")
    edited = text != current["text"]
    st.caption("Edited, not saved yet." if edited else f"Same as version {current['version']}.")

    st.subheader("Dry-run before saving")
    agents = client.get("/v1/agents", limit=200)["items"]
    sample = sample_proposal(agents)
    groups = st.text_input(
        "Reviewer groups (comma separated; empty: skip the approve question)", key="dry_groups"
    )
    if st.button("Dry-run", key="dry_run", icon=":material/science:") and sample is not None:
        names = [g.strip() for g in groups.split(",") if g.strip()]
        body = {
            "text": text if edited else None,
            "proposal": sample,
            "reviewer": {"groups": names} if names else None,
        }
        try:
            result = client.post("/v1/policies/test", body)
            if edited:
                result["version"] = None
            dry_run_result(result)
        except client.ApiProblem as problem:
            if problem.code == "invalid_policy":
                policy_error(problem, text, "The edited text does not parse")
            else:
                error(problem)

    st.subheader("Save")
    comment = st.text_input("What changed and why", key="policy_comment")
    if st.button("Validate and save", type="primary", key="policy_save", disabled=not edited):
        try:
            saved = client.put("/v1/policies", {"text": text, "comment": comment})
        except client.ApiProblem as problem:
            if problem.code == "invalid_policy":
                policy_error(problem, text, "Not saved")
            else:
                error(problem)
            return
        st.session_state["policies_flash"] = f"Saved as version {saved['version']}."
        # The editor and the history restart from the new current version.
        for key in ("policy_text", "policy_comment"):
            st.session_state.pop(key, None)
        st.rerun()


def history(latest: int) -> None:
    versions = client.get("/v1/policies/versions", limit=50)["items"]
    st.dataframe(
        pd.DataFrame(versions)[["version", "created_at", "created_by", "comment"]],
        hide_index=True,
        width="stretch",
    )
    # Keyed by the latest version: after a save the picker starts afresh on the newest one
    # (with a fixed key the browser kept showing the old pick while the server showed the new).
    pick = st.selectbox("Show version", [v["version"] for v in versions], key=f"policy_version_{latest}")
    st.code(client.get(f"/v1/policies/versions/{pick}")["text"], language="cedar", line_numbers=True)


st.title("Policies")
try:
    current = client.get("/v1/policies")
except client.NotAvailable:
    unavailable("Policy management")
    st.stop()
# Always present, so the flash does not shift the tabs below (which would reset the open tab).
flash_slot = st.container()
if flash := st.session_state.pop("policies_flash", None):
    flash_slot.success(md_escape(flash), icon=":material/check_circle:")
st.caption(
    md_escape(
        f"Version {current['version']} by {current.get('created_by', '?')} at "
        f"{str(current.get('created_at', ''))[:19]}: {current.get('comment') or 'no comment'}"
    )
)
view, edit, past = st.tabs(["Current", "Edit and dry-run", "History"])
with view:
    if current.get("policy_ids"):
        st.text("Policy ids: " + ", ".join(current["policy_ids"]))
    st.code(current["text"], language="cedar", line_numbers=True)
with edit:
    editor(current)
with past:
    history(current["version"])
