"""Pieces of the review screen: the action table, evidence, context, the edit form and its diff.

Everything an agent or a customer wrote is untrusted: it goes through `st.text`, `st.code`
or `st.json`, never Markdown or HTML.
"""

import json
from typing import Any

import jsonschema
import streamlit as st

from ui import client
from ui.common import format_value, show_bidi, untrusted_text

INLINE_LIMIT = 20_000


def action_table(payload: dict[str, Any], schema: dict[str, Any]) -> None:
    props = schema.get("properties", {})
    for field, value in payload.items():
        left, right = st.columns([1, 3])
        left.text(show_bidi(str(props.get(field, {}).get("title") or field)))
        right.text(show_bidi(format_value(payload, field, value)))


def evidence(items: list[dict[str, Any]], proposal_id: str) -> None:
    if not items:
        st.caption("The agent attached no evidence.")
    for n, item in enumerate(items):
        with st.container(border=True):
            st.text(show_bidi(f"{item.get('kind', 'item')} · {item.get('title') or 'untitled'}"))
            content = item.get("content", "")
            if isinstance(content, dict | list):
                st.json(content, expanded=2)
            elif len(content) > INLINE_LIMIT:
                untrusted_text(content[:INLINE_LIMIT])
                st.caption(f"Showing the first {INLINE_LIMIT:,} of {len(content):,} characters.")
                st.download_button(
                    "Download the full text",
                    content,
                    file_name=f"{proposal_id}-evidence-{n + 1}.txt",
                    mime="text/plain",
                    key=f"dl_{proposal_id}_{n}",
                )
            else:
                untrusted_text(content)
            if item.get("uri"):
                st.text(show_bidi(f"source: {item['uri']}"))  # shown, never a link
            if item.get("sha256"):
                st.text(f"sha256: {item['sha256']}")


def context(ctx: dict[str, Any]) -> None:
    labels = {
        "model": "model",
        "prompt_version": "prompt version",
        "tool_schema_version": "tool schema",
        "trace_id": "trace id",
        "run_id": "run id",
        "tokens": "tokens",
        "tool_calls": "tool calls",
        "cost_usd": "cost",
    }
    for key, label in labels.items():
        if ctx.get(key) is None:
            continue
        value = f"${ctx[key]:.4f}" if key == "cost_usd" else str(ctx[key])
        a, b = st.columns([1, 2])
        a.text(label)
        b.text(show_bidi(value))


def why_here(p: dict[str, Any]) -> None:
    policy = p.get("policy") or {}
    rows = [
        ("dial", p.get("dial")),
        ("effective mode", p.get("mode")),
        ("policy outcome", policy.get("outcome") or "-"),
        ("policy version", policy.get("version") if policy.get("version") is not None else "-"),
        ("policy ids", ", ".join(policy.get("policy_ids") or []) or "-"),
        ("flags", ", ".join(p.get("flags") or []) or "-"),
    ]
    for label, value in rows:
        a, b = st.columns([1, 2])
        a.text(label)
        b.text(str(value))


def history(agent_id: str) -> None:
    try:
        data = client.get(f"/v1/agents/{agent_id}/history")
    except client.NotAvailable:
        st.caption("History is not available on this server yet.")
        return
    counts = data.get("counts") or {}
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no proposals yet"
    st.text(f"last {data.get('window', 1000):,} proposals: {summary}")
    if data.get("suspended"):
        st.error("This agent is suspended.", icon=":material/block:")
    for item in data.get("recent", [])[:5]:
        st.text(show_bidi(f"{item['status']:>9}  {item['summary'][:80]}"))


def coerce(value: Any, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind in ("object", "array") and isinstance(value, str):
        return json.loads(value)
    return value


def edit_form(p: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    """A form built from the action type's schema; returns the edited payload once submitted."""
    props: dict[str, Any] = schema.get("properties") or {k: {} for k in p["payload"]}
    with st.form(f"edit_{p['id']}", border=False):
        values: dict[str, Any] = {}
        for field, spec in props.items():
            current = p["payload"].get(field)
            key = f"e_{p['id']}_{field}"
            kind = spec.get("type")
            if spec.get("enum"):
                options = list(spec["enum"])
                values[field] = st.selectbox(
                    field, options, index=options.index(current) if current in options else 0, key=key
                )
            elif kind in ("number", "integer"):
                values[field] = st.number_input(
                    field, value=float(current or 0), step=1.0 if kind == "integer" else 0.01, key=key
                )
            elif kind == "boolean":
                values[field] = st.checkbox(field, value=bool(current), key=key)
            elif kind in ("object", "array"):
                values[field] = st.text_area(field, json.dumps(current, indent=2), key=key)
            else:
                values[field] = st.text_input(field, "" if current is None else str(current), key=key)
        if not st.form_submit_button("Check changes", icon=":material/difference:"):
            return None
    try:
        edited = {f: coerce(v, props.get(f, {})) for f, v in values.items() if v is not None}
    except json.JSONDecodeError as exc:
        st.error(f"Not valid JSON: {exc.msg}")
        return None
    problems = sorted(jsonschema.Draft202012Validator(schema).iter_errors(edited), key=str)
    if problems:
        for problem in problems:
            where = ".".join(str(x) for x in problem.absolute_path) or "payload"
            st.error(f"{where}: {problem.message}")
        return None
    return edited


def diff_lines(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field), after.get(field)
        if old != new:
            lines.append(f"- {field}: {format_value(before, field, old)}")
            lines.append(f"+ {field}: {format_value(after, field, new)}")
    return lines
