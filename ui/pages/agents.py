"""Agents (admin): keys, dials, suspension (the kill switch), breaker and budgets."""

import json
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
        md_escape(f"Tripped at {agent['breaker_tripped_at'][:19]}: {agent.get('breaker_reason') or ''}"),
        icon=":material/warning:",
    )
    reason = st.text_input("Reset reason", key="breaker_reason")
    if st.button("Reset breaker", key="breaker_reset"):
        try:
            client.post(f"/v1/agents/{agent['id']}/breaker/reset", {"reason": reason})
            st.rerun()
        except client.NotAvailable:
            unavailable("Resetting the breaker")


def budgets(agent: dict[str, Any]) -> None:
    st.subheader("Budgets")
    try:
        data = client.get(f"/v1/agents/{agent['id']}/budgets")
    except client.NotAvailable:
        unavailable("Budgets")
        return
    usage = data.get("usage_today") or {}
    st.text(f"today: {usage.get('proposals', 0)} proposals, ${usage.get('cost_usd', 0):.2f}")
    text = st.text_area(
        "Budgets (JSON)", json.dumps(data.get("budgets", []), indent=2), height=200, key="budgets"
    )
    if st.button("Save budgets", key="budgets_save"):
        try:
            client.put(f"/v1/agents/{agent['id']}/budgets", {"budgets": json.loads(text)})
            st.toast("Budgets saved.")
        except json.JSONDecodeError as exc:
            st.error(f"Not valid JSON: {exc.msg} (line {exc.lineno})")
        except client.ApiProblem as problem:
            error(problem)


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
