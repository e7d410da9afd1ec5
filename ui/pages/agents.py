"""Agents (admin): keys, dials, suspension (the kill switch), breaker and budgets."""

from typing import Any

import pandas as pd
import streamlit as st

from ui import client
from ui.common import error, md_escape, unavailable
from ui.state import action_types

MODES = ["observe", "draft", "approve", "execute"]

st.title("Agents")


def kill_switch() -> None:
    state = client.get("/v1/kill-switch")
    with st.container(border=True):
        if state["engaged"]:
            st.error("Kill switch ENGAGED: every agent is stopped.", icon=":material/power_off:")
        reason = st.text_input("Reason", key="ks_reason", placeholder="why (recorded in the audit trail)")
        label = "Release the global kill switch" if state["engaged"] else "Stop all agents (kill switch)"
        if st.button(label, type="primary" if not state["engaged"] else "secondary", key="ks_toggle"):
            if not reason.strip():
                st.error("Give a reason first.")
            else:
                client.post("/v1/kill-switch", {"engaged": not state["engaged"], "reason": reason})
                st.rerun()


@st.dialog("Change the dial")
def confirm_dial(agent: dict[str, Any], action_type: str, old: str, new: str) -> None:
    st.text(f"{agent['name']}: {action_type} from {old} to {new}")
    reason = st.text_input("Reason (required, audited)", key="dial_reason")
    if st.button("Confirm dial change", type="primary", key="dial_confirm"):
        if not reason.strip():
            st.error("A reason is required.")
            return
        try:
            client.put(f"/v1/agents/{agent['id']}/dials/{action_type}", {"mode": new, "reason": reason})
        except client.ApiProblem as problem:
            error(problem)
            return
        st.session_state["agents_flash"] = f"Dial for {action_type} set to {new}."
        st.rerun()


def dials(agent: dict[str, Any]) -> None:
    st.subheader("Dials")
    for grant in agent["grants"]:
        a, b = st.columns([2, 3])
        a.text(grant["action_type"])
        key = f"dial_{agent['id']}_{grant['action_type']}"
        new = b.selectbox(
            "mode", MODES, index=MODES.index(grant["dial"]), key=key, label_visibility="collapsed"
        )
        if new != grant["dial"]:
            confirm_dial(agent, grant["action_type"], grant["dial"], new)


def suspension(agent: dict[str, Any]) -> None:
    st.subheader("Suspension")
    reason = st.text_input("Reason", key=f"sus_reason_{agent['id']}")
    if agent["suspended"]:
        st.error("Suspended: every request of this agent is refused.", icon=":material/block:")
        if st.button("Resume agent", key="resume"):
            client.post(f"/v1/agents/{agent['id']}/resume", {"reason": reason})
            st.rerun()
    elif st.button("Suspend agent", type="primary", icon=":material/block:", key="suspend"):
        if not reason.strip():
            st.error("Give a reason first.")
        else:
            client.post(f"/v1/agents/{agent['id']}/suspend", {"reason": reason})
            st.rerun()


def breaker(agent: dict[str, Any]) -> None:
    st.subheader("Breaker")
    if not agent.get("breaker_tripped_at"):
        st.text("closed: dials apply as set")
        return
    st.warning(
        md_escape(
            f"Tripped at {agent['breaker_tripped_at'][:19]}: {agent.get('breaker_reason') or ''}. "
            "Its dials are capped at draft until the breaker is reset."
        ),
        icon=":material/warning:",
    )
    reason = st.text_input("Reset reason", key=f"breaker_reason_{agent['id']}")
    if st.button("Reset breaker", key="breaker_reset"):
        if not reason.strip():
            st.error("Give a reason first.")
            return
        client.post(f"/v1/agents/{agent['id']}/breaker/reset", {"reason": reason})
        st.session_state["agents_flash"] = "Breaker reset: the dials apply again."
        st.rerun()


LIMITS = (
    ("max_proposals_per_day", "Proposals per day", int),
    ("max_cost_usd_per_day", "Cost per day (USD)", float),
    ("max_tool_calls_per_task", "Tool calls per task", int),
    ("max_tokens_per_task", "Tokens per task", int),
)


def budgets(agent: dict[str, Any]) -> None:
    """The agent-wide budget as a form; per-action-type budgets are kept as they are."""
    st.subheader("Budgets")
    try:
        data = client.get(f"/v1/agents/{agent['id']}/budgets")
    except client.NotAvailable:
        unavailable("Budgets")
        return
    usage = data.get("usage_today") or {}
    st.text(f"Used today: {usage.get('proposals', 0)} proposals, ${usage.get('cost_usd', 0):.2f}")
    rows: list[dict[str, Any]] = data.get("budgets") or []
    whole = next((b for b in rows if not b.get("action_type")), {})
    others = [b for b in rows if b.get("action_type")]
    with st.form(f"budgets_{agent['id']}"):
        st.caption("Agent-wide limits (empty: no limit). Crossing one trips the breaker.")
        values: dict[str, Any] = {}
        cols = st.columns(2)
        for n, (field, label, kind) in enumerate(LIMITS):
            values[field] = cols[n % 2].number_input(
                label,
                min_value=0 if kind is int else 0.0,
                value=whole.get(field),
                step=1 if kind is int else 1.0,
                key=f"b_{field}_{agent['id']}",
            )
        allowed = st.multiselect(
            "Allowed action types (empty: any granted)",
            list(action_types()),
            default=whole.get("allowed_action_types") or [],
            key=f"b_allowed_{agent['id']}",
        )
        if st.form_submit_button("Save budgets", key="budgets_save"):
            spec = {f: (k(values[f]) if values[f] is not None else None) for f, _, k in LIMITS}
            spec["allowed_action_types"] = allowed or None
            keep = [spec] if any(v is not None for v in spec.values()) else []
            try:
                client.put(f"/v1/agents/{agent['id']}/budgets", {"budgets": keep + others})
            except client.ApiProblem as problem:
                error(problem)
                return
            st.session_state["agents_flash"] = "Budgets saved."
            st.rerun()
    if others:
        st.caption("Per action type (set through the API)")
        st.dataframe(pd.DataFrame(others), hide_index=True, width="stretch")


def keys(agent: dict[str, Any]) -> None:
    st.subheader("API keys")
    shown = st.session_state.get("new_key")
    if shown and shown["agent_id"] == agent["id"]:
        st.warning("Copy this key now: it is shown once and never again.", icon=":material/key:")
        st.code(shown["key"], language=None)
        if st.button("I have stored it", key="key_ack"):
            st.session_state.pop("new_key")
            st.rerun()
    rows = client.get(f"/v1/agents/{agent['id']}/keys")["items"]
    for k in rows:
        a, b, c = st.columns([3, 2, 2])
        a.text(f"{k['prefix']}…  {k['name']}")
        b.text("revoked" if k["revoked_at"] else f"expires {(k['expires_at'] or '-')[:10]}")
        if not k["revoked_at"] and c.button("Revoke", key=f"revoke_{k['id']}"):
            client.delete(f"/v1/agents/{agent['id']}/keys/{k['id']}")
            st.rerun()
    name = st.text_input("New key label", key="key_name")
    if st.button("Create key", key="key_create"):
        created = client.post(f"/v1/agents/{agent['id']}/keys", {"name": name})
        st.session_state["new_key"] = {"agent_id": agent["id"], "key": created["key"]}
        st.rerun()


def create_agent() -> None:
    with st.expander("New agent"), st.form("new_agent", clear_on_submit=True):
        name = st.text_input("Name")
        owner = st.text_input("Owner")
        grants = st.multiselect("May propose", list(action_types()))
        if st.form_submit_button("Create agent"):
            try:
                client.post("/v1/agents", {"name": name, "owner": owner, "grants": grants})
                st.rerun()
            except client.ApiProblem as problem:
                error(problem)


if flash := st.session_state.pop("agents_flash", None):
    st.success(md_escape(flash))
kill_switch()
agents = client.get("/v1/agents", limit=200)["items"]
create_agent()
if not agents:
    st.info("No agents yet.")
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                "name": a["name"],
                "owner": a["owner"],
                "status": "SUSPENDED" if a["suspended"] else "active",
                "breaker": "tripped" if a.get("breaker_tripped_at") else "closed",
                "dials": ", ".join(f"{g['action_type']}={g['dial']}" for g in a["grants"]),
            }
            for a in agents
        ]
    ),
    hide_index=True,
    width="stretch",
)
by_id = {a["id"]: a for a in agents}
chosen = st.selectbox("Agent", list(by_id), format_func=lambda i: by_id[i]["name"], key="agent_pick")
agent = by_id[chosen]
left, right = st.columns(2, gap="large")
with left:
    dials(agent)
    suspension(agent)
    breaker(agent)
with right:
    keys(agent)
    budgets(agent)
