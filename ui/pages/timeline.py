"""Timeline: one proposal's whole story on one screen, from the agent's context and evidence
through the policy's judgement, each decision and who made it, the execution and its
result, to the webhook deliveries; with the trace id (linked when ``SIGNOFF_TRACE_URL`` is a
template such as ``http://jaeger:16686/trace/{trace_id}``).

Everything here was written by an agent, a customer or a reviewer: shown as plain text.
"""

import json
import os
from typing import Any

import streamlit as st

from ui import client
from ui.common import md_escape, parse_ts, show_bidi, untrusted_text

TITLES = {
    "proposal.created": "Placed by the agent",
    "policy.evaluated": "Judged by policy",
    "proposal.decided": "Decided",
    "decision.recorded": "Approval recorded",
    "decision.refused": "Decision refused by policy",
    "proposal.claimed": "Claimed",
    "proposal.released": "Released",
    "proposal.expired": "Expired",
    "proposal.cancelled": "Cancelled by the agent",
    "proposal.executed": "Executed",
    "proposal.escalated": "Escalated",
    "proposal.reminded": "Reminder sent",
    "webhook.delivery": "Webhook delivery",
}


def headline(item: dict[str, Any]) -> str:
    """One line that says what happened (plain text)."""
    data, event = item["data"], item["event"]
    if event == "proposal.created":
        return f"{TITLES[event]}: status {data.get('status')}, mode {data.get('mode')}"
    if event == "policy.evaluated":
        rules = ", ".join(data.get("policy_ids") or []) or "no rule"
        return f"Policy version {data.get('version')}: {data.get('outcome')} ({rules})"
    if event in ("proposal.decided", "decision.recorded"):
        decision = data.get("decision") or data
        verdict = {"approve": "Approved", "reject": "Rejected"}.get(decision.get("verdict"), "Decided")
        reviewer = decision.get("reviewer") or {}
        who = reviewer.get("name") or reviewer.get("sub") or decision.get("decided_by") or item["actor"]
        edited = " with edits" if decision.get("edited_payload") else ""
        reasons = ", ".join(decision.get("reason_codes") or [])
        return f"{verdict}{edited} by {who}" + (f" ({reasons})" if reasons else "")
    if event == "proposal.executed":
        execution = data.get("execution") or data
        return f"Executed: {execution.get('status')}"
    if event == "webhook.delivery":
        attempts = data.get("attempts", 0)
        return f"Webhook {data.get('event_type')}: {data.get('status')} after {attempts} attempt(s)"
    return TITLES.get(event, event)


def details(item: dict[str, Any]) -> None:
    data, event = item["data"], item["event"]
    if event == "proposal.created":
        ctx = data.get("context") or {}
        keys = ("model", "prompt_version", "tool_calls", "tokens", "cost_usd")
        facts = [f"{k}: {ctx[k]}" for k in keys if k in ctx]
        if facts:
            st.text(" · ".join(facts))
        if data.get("summary"):
            st.text(show_bidi(str(data["summary"])))
        for evidence in data.get("evidence") or []:
            st.text(show_bidi(f"{evidence.get('kind')}: {evidence.get('title') or ''}"))
    elif event in ("proposal.decided", "decision.recorded"):
        decision = data.get("decision") or data
        if decision.get("comment"):
            st.text(show_bidi(f"Comment: {decision['comment']}"))
        if decision.get("edited_payload"):
            st.caption("Edited payload")
            untrusted_text(json.dumps(decision["edited_payload"], indent=2, ensure_ascii=False))
    elif event == "proposal.executed":
        execution = data.get("execution") or data
        if execution.get("result") is not None:
            untrusted_text(json.dumps(execution["result"], indent=2, ensure_ascii=False))
        if execution.get("error"):
            st.text(show_bidi(f"Error: {execution['error']}"))
    elif event == "webhook.delivery" and data.get("last_error"):
        st.text(show_bidi(f"Last error: {data['last_error']}"))


def trace_line(trace_id: str | None) -> None:
    if not trace_id:
        st.caption("No trace id: the agent sent none and tracing is off.")
        return
    template = os.environ.get("SIGNOFF_TRACE_URL", "")
    with st.container(key="trace_id"):
        if template:
            url = template.format(trace_id=trace_id)
            st.link_button(f"Trace {trace_id}", url, icon=":material/timeline:")
        else:
            st.text(f"Trace {trace_id}")


def render(pid: str) -> None:
    found = client.get(f"/v1/proposals/{pid}/timeline")
    st.title("Timeline")
    st.caption(f"Proposal {md_escape(pid)}")
    trace_line(found.get("trace_id"))
    for n, item in enumerate(found["items"]):
        with st.container(key=f"step_{n}", border=True):
            at = parse_ts(str(item["at"]))
            when = at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else str(item["at"])
            st.text(f"{n + 1}. {headline(item)}")
            st.caption(f"{md_escape(when)} · {md_escape(item['actor'])} · {md_escape(item['event'])}")
            details(item)


pid = st.query_params.get("id") or st.text_input("Proposal id", key="timeline_id")
if not pid:
    st.title("Timeline")
    st.info("Open a proposal's timeline from its review screen, or paste its id.")
    st.stop()
try:
    render(str(pid))
except client.ApiProblem as problem:
    if problem.status not in (404, 422) or isinstance(problem, client.NotAvailable):
        raise
    st.warning("That proposal does not exist.", icon=":material/search_off:")
