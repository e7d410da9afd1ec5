"""Pieces of the review screen: key facts, the action table, evidence, the edit form and its diff.

Everything an agent or a customer wrote is untrusted: it goes through `st.text`, `st.code`,
tables or escaped Markdown, never raw Markdown or HTML. Long text sits in bounded panes, so one
huge message cannot make the page thousands of pixels tall.
"""

import json
from typing import Any

import jsonschema
import pandas as pd
import streamlit as st

from ui import client
from ui.common import format_value, label, local_time, md_escape, reason_label, show_bidi

INLINE_LIMIT = 20_000
PANE_HEIGHT = 260
MODES = {
    "observe": "only records what the agent would do",
    "draft": "drafts every action for a person to approve",
    "approve": "asks a person to approve every action",
    "execute": "acts alone where the policy allows it",
}


def key_facts(payload: dict[str, Any], schema: dict[str, Any]) -> None:
    """Amount and who it is for, large, next to the summary."""
    amount = next((k for k in payload if "amount" in k), None)
    who = next((k for k in payload if k.startswith("customer")), None)
    cols = st.columns(2)
    if amount:
        cols[0].metric(label(amount, schema), format_value(payload, amount, payload[amount]))
    if who:
        cols[1].metric(label(who, schema), show_bidi(str(payload[who])))


def approvals_line(p: dict[str, Any]) -> None:
    """ "1 of 2 approvals: Lee Lead" when the action type needs more than one (servers that say)."""
    need = p.get("approvals_required")
    given = p.get("approvals")
    if not need or given is None or int(need) <= 1:
        return
    names = ", ".join(str(a.get("name") or a.get("reviewer") or "?") for a in given) or "none yet"
    st.text(show_bidi(f"{len(given)} of {need} approvals: {names}"))


def action_table(payload: dict[str, Any], schema: dict[str, Any]) -> None:
    rows = [
        {"Field": label(field, schema), "Value": show_bidi(format_value(payload, field, value))}
        for field, value in payload.items()
    ]
    st.table(pd.DataFrame(rows).set_index("Field"))


def _record(content: Any) -> None:
    """A structured record as a titled table, not a JSON tree."""
    if isinstance(content, dict):
        rows = [
            {"Field": label(str(k)), "Value": show_bidi(v if isinstance(v, str) else json.dumps(v))}
            for k, v in content.items()
        ]
        st.table(pd.DataFrame(rows).set_index("Field") if rows else pd.DataFrame())
    elif isinstance(content, list) and all(isinstance(x, dict) for x in content):
        frame = pd.DataFrame(content).map(lambda v: show_bidi(v if isinstance(v, str) else json.dumps(v)))
        st.dataframe(frame, hide_index=True, height=min(PANE_HEIGHT, 38 + 35 * len(content)))
    else:
        text = show_bidi(json.dumps(content, indent=2, ensure_ascii=False))
        st.code(text, language=None, height=PANE_HEIGHT)


def evidence(items: list[dict[str, Any]], proposal_id: str) -> None:
    if not items:
        st.caption("The agent attached no evidence.")
    for n, item in enumerate(items):
        with st.container(border=True):
            st.markdown(f"**{md_escape(show_bidi(item.get('title') or 'untitled'))}**")
            st.caption(md_escape(str(item.get("kind", "item"))))
            content = item.get("content", "")
            if isinstance(content, dict | list):
                _record(content)
            else:
                text = show_bidi(str(content))
                shown = text[:INLINE_LIMIT]
                # A bounded pane: long text scrolls inside it instead of stretching the page.
                lines = shown.count("\n") + len(shown) // 90 + 1
                st.code(shown, language=None, wrap_lines=True, height=PANE_HEIGHT if lines > 10 else None)
                if len(text) > INLINE_LIMIT:
                    st.caption(f"Showing the first {INLINE_LIMIT:,} of {len(text):,} characters.")
                    st.download_button(
                        "Download the full text",
                        str(content),
                        file_name=f"{proposal_id}-evidence-{n + 1}.txt",
                        mime="text/plain",
                        key=f"dl_{proposal_id}_{n}",
                    )
            if item.get("uri"):
                st.text(show_bidi(f"source: {item['uri']}"))  # shown, never a link
            if item.get("sha256"):
                st.caption(f"sha256 {item['sha256']}")


def context(ctx: dict[str, Any]) -> None:
    labels = {
        "model": "Model",
        "prompt_version": "Prompt version",
        "tool_schema_version": "Tool schema",
        "trace_id": "Trace id",
        "run_id": "Run id",
        "tokens": "Tokens",
        "tool_calls": "Tool calls",
        "cost_usd": "Cost",
    }
    rows = [
        {"Field": name, "Value": f"${ctx[key]:.4f}" if key == "cost_usd" else show_bidi(str(ctx[key]))}
        for key, name in labels.items()
        if ctx.get(key) is not None
    ]
    if rows:
        st.table(pd.DataFrame(rows).set_index("Field"))
    else:
        st.caption("The agent sent no context.")


def why_sentence(p: dict[str, Any], kind: dict[str, Any]) -> str:
    """One plain sentence: why this case waits for a person."""
    action = p["action_type"]
    agent = p.get("agent_name") or "The agent"
    policy = p.get("policy") or {}
    if p.get("mode") in ("draft", "approve", "observe") and p.get("dial") != "execute":
        return f"{agent}'s setting for {action} {MODES.get(p.get('dial') or '', 'needs a person')}."
    if p.get("dial") == "execute" and p.get("mode") != "execute":
        return f"{agent} would act alone, but its breaker is tripped: a person decides until it is reset."
    if policy.get("outcome") == "propose":
        return f"The policy does not let {agent} do this {action} alone, so a person decides."
    return "A person decides this case."


def why_here(p: dict[str, Any], kind: dict[str, Any]) -> None:
    st.text(why_sentence(p, kind))
    policy = p.get("policy") or {}
    with st.expander("Details"):
        rows = [
            ("Setting (dial)", p.get("dial")),
            ("Applied now", p.get("mode")),
            ("Policy version", policy.get("version") if policy.get("version") is not None else "-"),
            ("Policies that matched", ", ".join(policy.get("policy_ids") or []) or "none"),
            ("Flags", ", ".join(p.get("flags") or []) or "none"),
        ]
        st.table(pd.DataFrame([{"Field": a, "Value": str(b)} for a, b in rows]).set_index("Field"))


def decisions(p: dict[str, Any], kind: dict[str, Any]) -> None:
    schema = kind.get("payload_schema") or {}
    for d in p.get("decisions") or []:
        who = d.get("reviewer_name") or d.get("reviewer_sub") or d.get("decided_by")
        st.text(show_bidi(f"{d['verdict']} by {who} at {local_time(d.get('created_at'))}"))
        if d.get("reason_codes"):
            st.text(", ".join(reason_label(c, kind) for c in d["reason_codes"]))
        if d.get("comment"):
            st.text(show_bidi(d["comment"]))
        if d.get("edited_payload"):
            st.code("\n".join(diff_lines(p["payload"], d["edited_payload"], schema)), language="diff")


def history(agent_id: str, schema: dict[str, Any]) -> None:
    try:
        data = client.get(f"/v1/agents/{agent_id}/history")
    except client.NotAvailable:
        st.caption("History is not available on this server yet.")
        return
    counts = data.get("counts") or {}
    summary = ", ".join(f"{v:,} {k}" for k, v in sorted(counts.items())) or "no proposals yet"
    st.text(f"Last {data.get('window', 1000):,} proposals: {summary}")
    if data.get("suspended"):
        st.error("This agent is suspended.", icon=":material/block:")
    rows = []
    for item in data.get("recent", [])[:5]:
        paid = item.get("final_payload") or item.get("payload") or {}
        amount = next((k for k in paid if "amount" in k), None)
        rows.append(
            {
                "status": item["status"],
                "amount": format_value(paid, amount, paid[amount]) if amount else "",
                "summary": show_bidi(item["summary"][:80]),
            }
        )
    if rows:
        # A static table, not st.dataframe: five rows do not need a grid, and the grid costs the
        # browser tens of milliseconds to build on every next case.
        st.table(pd.DataFrame(rows).set_index("status"))


def coerce(value: Any, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind in ("object", "array") and isinstance(value, str):
        return json.loads(value)
    return value


def edit_form(p: dict[str, Any], schema: dict[str, Any], editable: list[str] | None) -> dict[str, Any] | None:
    """Inputs built from the action type's schema, live (no submit step, so what is shown is
    what a shortcut sees); only `editable` fields can change when the action type names them.
    Returns the edited payload, or None while it does not validate."""
    payload = p["payload"]
    props: dict[str, Any] = schema.get("properties") or {k: {} for k in payload}
    values: dict[str, Any] = {}
    for field, spec in props.items():
        current = payload.get(field)
        key = f"e_{p['id']}_{field}"
        locked = editable is not None and field not in editable
        name = label(field, schema)
        kind = spec.get("type")
        if spec.get("enum"):
            options = list(spec["enum"])
            index = options.index(current) if current in options else 0
            values[field] = st.selectbox(name, options, index=index, key=key, disabled=locked)
        elif kind in ("number", "integer"):
            step = 1.0 if kind == "integer" else 0.01
            values[field] = st.number_input(
                name, value=float(current or 0), step=step, key=key, disabled=locked
            )
        elif kind == "boolean":
            values[field] = st.checkbox(name, value=bool(current), key=key, disabled=locked)
        elif kind in ("object", "array"):
            values[field] = st.text_area(name, json.dumps(current, indent=2), key=key, disabled=locked)
        else:
            text = "" if current is None else str(current)
            values[field] = st.text_input(name, text, key=key, disabled=locked)
    if editable is not None:
        names = ", ".join(label(f, schema) for f in editable)
        st.caption(f"Only {names} can be changed for this action.")
    try:
        edited = {f: coerce(v, props.get(f, {})) for f, v in values.items() if v is not None}
    except json.JSONDecodeError as exc:
        st.error(f"Not valid JSON: {exc.msg}")
        return None
    # Unchanged numbers keep the agent's own type (50, not 50.0).
    edited = {f: payload[f] if f in payload and payload[f] == v else v for f, v in edited.items()}
    problems = sorted(jsonschema.Draft202012Validator(schema).iter_errors(edited), key=str)
    if problems:
        for problem in problems:
            where = ".".join(str(x) for x in problem.absolute_path)
            st.error(md_escape(f"{label(where, schema) if where else 'Payload'}: {problem.message}"))
        return None
    return edited


def diff_lines(
    before: dict[str, Any], after: dict[str, Any], schema: dict[str, Any] | None = None
) -> list[str]:
    lines = []
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field), after.get(field)
        if old != new:
            name = label(field, schema)
            lines.append(f"- {name}: {format_value(before, field, old)}")
            lines.append(f"+ {name}: {format_value(after, field, new)}")
    return lines
