"""Agents (admin): keys, dials, suspension (the kill switch), breaker and budgets."""

from typing import Any

import pandas as pd
import streamlit as st

from ui import client
from ui.common import error, local_time, md_escape, unavailable
from ui.state import action_types

MODES = ["observe", "draft", "approve", "execute"]

st.title("Agents")


def kill_switch() -> None:
    state = client.get("/v1/kill-switch")
    with st.expander("Kill switch: stop every agent", expanded=bool(state["engaged"])):
        if state["engaged"]:
            st.error("Kill switch ENGAGED: every agent is stopped.", icon=":material/power_off:")
        label = "Release the global kill switch" if state["engaged"] else "Stop all agents"
        if st.button(label, key="ks_toggle"):
            confirm_kill_switch(not state["engaged"])


@st.dialog("Confirm the kill switch")
def confirm_kill_switch(engage: bool) -> None:
    st.text("Every agent stops at once." if engage else "Agents may act again, as their dials allow.")
    reason = st.text_input("Reason (required, audited)", key="ks_reason")
    if st.button("Stop all agents" if engage else "Release", type="primary", key="ks_confirm"):
        if not reason.strip():
            st.error("Give a reason first.")
            return
        client.post("/v1/kill-switch", {"engaged": engage, "reason": reason})
        st.session_state["agents_flash"] = "Kill switch engaged." if engage else "Kill switch released."
        st.rerun()


def forget_dial_choice(key: str, old: str) -> None:
    """Escape or the close button: the select goes back to the dial as it stands."""
    st.session_state[key] = old
    st.session_state.pop("dial_reason", None)


def confirm_dial(agent: dict[str, Any], action_type: str, old: str, new: str, key: str) -> None:
    @st.dialog("Change the dial", on_dismiss=lambda: forget_dial_choice(key, old))
    def dialog() -> None:
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
            st.session_state.pop("dial_reason", None)
            st.rerun()

    dialog()


def dials(agent: dict[str, Any]) -> None:
    st.subheader("Dials")
    tripped = bool(agent.get("breaker_tripped_at"))
    for grant in agent["grants"]:
        a, b, c = st.columns([2, 3, 3])
        a.text(grant["action_type"])
        key = f"dial_{agent['id']}_{grant['action_type']}"
        new = b.selectbox(
            "mode", MODES, index=MODES.index(grant["dial"]), key=key, label_visibility="collapsed"
        )
        capped = "draft" if tripped and grant["dial"] == "execute" else None
        effective = grant.get("effective_mode") or capped
        if effective and effective != grant["dial"]:
            c.caption(f"applies as {effective} while the breaker is tripped")
        if new != grant["dial"]:
            confirm_dial(agent, grant["action_type"], grant["dial"], new, key)


def suspension(agent: dict[str, Any]) -> None:
    st.subheader("Suspension")
    if agent["suspended"]:
        st.error("Suspended: every request of this agent is refused.", icon=":material/block:")
        if st.button("Resume agent", key="resume"):
            confirm_suspension(agent, suspend=False)
    elif st.button("Suspend agent", icon=":material/block:", key="suspend"):
        confirm_suspension(agent, suspend=True)


@st.dialog("Confirm")
def confirm_suspension(agent: dict[str, Any], suspend: bool) -> None:
    what = "Suspend" if suspend else "Resume"
    after = " Every request it makes is refused until resumed." if suspend else ""
    st.text(f"{what} {agent['name']}?{after}")
    # A fresh box each time: the reason for suspending is not the reason for resuming.
    reason = st.text_input("Reason (required, audited)", key=f"sus_reason_{agent['id']}_{int(suspend)}")
    if st.button(f"{what} agent", type="primary", key="sus_confirm"):
        if not reason.strip():
            st.error("Give a reason first.")
            return
        client.post(f"/v1/agents/{agent['id']}/{'suspend' if suspend else 'resume'}", {"reason": reason})
        st.session_state.pop(f"sus_reason_{agent['id']}_{int(suspend)}", None)
        st.session_state["agents_flash"] = f"{agent['name']} {'suspended' if suspend else 'resumed'}."
        st.rerun()


CAUSES = {
    "guard_tripped:tool_call_spike": "a sudden spike in tool calls",
    "guard_tripped:policy_denials": "three policy denials within ten minutes",
}


def cause(code: str | None) -> str:
    """A breaker cause in words (`budget_exceeded:max_proposals_per_day` -> its limit's label)."""
    if not code:
        return "no cause recorded"
    if code in CAUSES:
        return CAUSES[code]
    if code.startswith("budget_exceeded:"):
        field = code.split(":", 1)[1]
        name = next((text for f, text, _ in LIMITS if f == field), field.replace("_", " "))
        return f"over its budget: {name.lower()}"
    return code.replace("_", " ").replace(":", ": ")


def breaker(agent: dict[str, Any]) -> None:
    st.subheader("Breaker")
    if not agent.get("breaker_tripped_at"):
        st.text("Closed: the dials apply as set.")
        return
    st.warning(
        md_escape(
            f"Tripped at {local_time(agent['breaker_tripped_at'])}: {cause(agent.get('breaker_reason'))}. "
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
        st.session_state.pop(f"breaker_reason_{agent['id']}", None)
        st.session_state["agents_flash"] = "Breaker reset: the dials apply again."
        st.rerun()


LIMITS = (
    ("max_proposals_per_day", "Proposals per day", int),
    ("max_cost_usd_per_day", "Cost per day (USD)", float),
    ("max_tool_calls_per_task", "Tool calls per task", int),
    ("max_tokens_per_task", "Tokens per task", int),
)


def _limit(text: str, kind: type, label: str) -> Any:
    """A budget box: empty means no limit (a number box would snap back to its last value)."""
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        value = kind(float(text)) if kind is int else float(text)
    except ValueError as exc:
        raise ValueError(f"{label}: write a number, or leave it empty for no limit.") from exc
    if value < 0:
        raise ValueError(f"{label}: a limit cannot be negative.")
    return value


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
    # Keyed by what is saved: after a save the boxes show the stored values, not stale ones.
    version = abs(hash(repr(sorted(whole.items(), key=str)))) % 10**8
    with st.form(f"budgets_{agent['id']}"):
        st.caption("Agent-wide limits. Leave a box empty for no limit. Crossing one trips the breaker.")
        values: dict[str, str] = {}
        cols = st.columns(2)
        for n, (field, label, _) in enumerate(LIMITS):
            current = whole.get(field)
            values[field] = cols[n % 2].text_input(
                label,
                value="" if current is None else f"{current:g}",
                placeholder="no limit",
                key=f"b_{field}_{agent['id']}_{version}",
            )
        allowed = st.multiselect(
            "Allowed action types (empty: any granted)",
            list(action_types()),
            default=whole.get("allowed_action_types") or [],
            key=f"b_allowed_{agent['id']}_{version}",
        )
        hard = st.checkbox(
            "Hard: refuse proposals past a limit (otherwise they are flagged and the breaker trips)",
            value=bool(whole.get("hard")),
            key=f"b_hard_{agent['id']}_{version}",
        )
        if st.form_submit_button("Save budgets", key="budgets_save"):
            try:
                spec: dict[str, Any] = {f: _limit(values[f], k, text) for f, text, k in LIMITS}
            except ValueError as exc:
                st.error(md_escape(str(exc)))
                return
            spec["allowed_action_types"] = allowed or None
            keep = [{**spec, "hard": hard}] if any(v is not None for v in spec.values()) else []
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
            confirm_revoke(agent, k)
    name = st.text_input("New key label", key="key_name")
    if st.button("Create key", key="key_create"):
        created = client.post(f"/v1/agents/{agent['id']}/keys", {"name": name})
        st.session_state["new_key"] = {"agent_id": agent["id"], "key": created["key"]}
        st.rerun()


@st.dialog("Revoke this key?")
def confirm_revoke(agent: dict[str, Any], key: dict[str, Any]) -> None:
    st.text(f"{key['prefix']}…  {key['name']}: the agent can no longer use it, at once and for good.")
    if st.button("Revoke the key", type="primary", key="revoke_confirm"):
        client.delete(f"/v1/agents/{agent['id']}/keys/{key['id']}")
        st.session_state["agents_flash"] = "Key revoked."
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
                "breaker": (
                    f"tripped: {cause(a.get('breaker_reason'))}" if a.get("breaker_tripped_at") else "closed"
                ),
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
