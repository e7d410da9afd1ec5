"""Review: one screen that explains a case and takes the decision; the next item opens at once."""

from typing import Any

import streamlit as st

from ui import client, review_parts
from ui.common import md_escape, release_claim, show_bidi, time_left
from ui.state import action_types, me

QUEUE_LOOKAHEAD = 25


def next_item(exclude: set[str]) -> str | None:
    """The nearest-deadline pending item nobody else is reviewing."""
    page = client.get("/v1/queue", limit=QUEUE_LOOKAHEAD)
    for item in page["items"]:
        claim = item.get("claim")
        if item["id"] in exclude or (claim and claim["by"] != me()):
            continue
        return str(item["id"])
    return None


def go_next(done: str | None = None) -> None:
    skipped: set[str] = st.session_state.setdefault("skipped", set())
    if done:
        skipped.add(done)
    st.session_state["current"] = next_item(skipped)


def take_claim(pid: str) -> str | None:
    """Claim the item on open; a message if someone else holds it."""
    if st.session_state.get("claimed") == pid:
        return None
    release_claim()
    try:
        client.post(f"/v1/proposals/{pid}/claim")
    except client.ApiProblem as problem:
        if problem.code in ("claimed", "already_decided", "proposal_expired"):
            return problem.message
        raise
    st.session_state["claimed"] = pid
    return None


def _guarded(pid: str, action: Any) -> None:
    """Run a button's work in its callback (before the rerun), so the next item is drawn in one pass."""
    try:
        action()
    except client.SessionExpired:
        st.session_state["session_expired"] = True
    except client.ApiProblem as problem:
        st.session_state["review_error"] = (pid, problem.message)


def decide(pid: str, body: dict[str, Any], flash: str) -> None:
    def work() -> None:
        client.post(f"/v1/proposals/{pid}/decisions", body)
        st.session_state.pop("claimed", None)  # a decision ends the claim on the server
        st.session_state.pop(f"edited_{pid}", None)
        st.session_state["flash"] = flash
        go_next(pid)

    _guarded(pid, work)


def on_approve(pid: str) -> None:
    decide(pid, {"verdict": "approve", "comment": st.session_state.get(f"c_{pid}", "")}, "Approved.")


def on_approve_edited(pid: str) -> None:
    edited = st.session_state.get(f"edited_{pid}")
    decide(
        pid, {"verdict": "approve", "edited_payload": edited, "comment": "edited"}, "Approved with changes."
    )


def on_reject(pid: str) -> None:
    codes = st.session_state.get(f"r_{pid}") or []
    if not codes:
        st.session_state["review_error"] = (pid, "Pick at least one reason.")
        return
    body = {"verdict": "reject", "reason_codes": codes, "comment": st.session_state.get(f"rc_{pid}", "")}
    decide(pid, body, "Rejected.")


def on_next(pid: str) -> None:
    def work() -> None:
        release_claim()
        go_next(pid)

    _guarded(pid, work)


if "id" in st.query_params:
    st.session_state["current"] = st.query_params["id"]
    del st.query_params["id"]
pid = st.session_state.get("current") or next_item(st.session_state.setdefault("skipped", set()))
st.session_state["current"] = pid

if st.session_state.pop("session_expired", False):
    raise client.SessionExpired(401, "token_expired", "Your session expired.")
if flash := st.session_state.pop("flash", None):
    st.toast(flash, icon=":material/check_circle:")
if not pid:
    st.title("Review")
    st.success("The queue is empty. Well done.", icon=":material/done_all:")
    st.stop()

try:
    p = client.get(f"/v1/proposals/{pid}")
except client.ApiProblem as problem:
    if problem.status not in (404, 422) or isinstance(problem, client.NotAvailable):
        raise
    # A stale or mistyped link: forget it so the next visit starts from the queue.
    st.session_state["current"] = None
    st.warning("That proposal does not exist.", icon=":material/search_off:")
    st.button("Review next", type="primary", key="after_missing")
    st.stop()
pending = p["status"] == "pending"
held_by_other = take_claim(pid) if pending else None
kind = action_types().get(p["action_type"], {})
schema = kind.get("payload_schema") or {}

head, nav = st.columns([5, 1])
with head:
    st.caption(
        f"{md_escape(p['action_type'])} · risk {kind.get('risk', '?')} · due in {time_left(p['expires_at'])}"
    )
    with st.container(key="summary"):
        st.text(show_bidi(p["summary"] or "(no summary)"))
with nav:
    st.button(
        "Next",
        icon=":material/skip_next:",
        shortcut="n",
        key="next",
        help="Skip (n)",
        on_click=on_next,
        args=(pid,),
    )

if (stale := st.session_state.pop("review_error", None)) and stale[0] == pid:
    st.error(md_escape(show_bidi(stale[1])), icon=":material/block:")
if not pending:
    st.info(f"This proposal is {p['status']}; nothing left to decide.", icon=":material/info:")
elif held_by_other:
    st.warning(md_escape(show_bidi(held_by_other)), icon=":material/lock:")

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Proposed action")
    review_parts.action_table(p["payload"], schema)
    st.subheader("Evidence")
    review_parts.evidence(p.get("evidence") or [], pid)
with right:
    if pending and not held_by_other:
        st.subheader("Decision")
        approve_tab, edit_tab, reject_tab = st.tabs(["Approve", "Edit and approve", "Reject"])
        with approve_tab:
            st.text_input("Comment (optional)", key=f"c_{pid}")
            st.button(
                "Approve", type="primary", shortcut="a", key="approve", on_click=on_approve, args=(pid,)
            )
        with edit_tab:
            edited = review_parts.edit_form(p, schema)
            if edited is not None:
                st.session_state[f"edited_{pid}"] = edited
            edited = st.session_state.get(f"edited_{pid}")
            if edited is not None:
                lines = review_parts.diff_lines(p["payload"], edited)
                if lines:
                    st.caption("What changes")
                    st.code("\n".join(lines), language="diff")
                    st.button(
                        "Approve with these changes",
                        type="primary",
                        key="approve_edit",
                        on_click=on_approve_edited,
                        args=(pid,),
                    )
                else:
                    st.caption("Nothing changed yet.")
        with reject_tab:
            codes = [c for c in kind.get("reason_codes", []) if not c.get("retired")]
            labels = {c["code"]: c["label"] for c in codes}
            st.multiselect(
                "Reasons",
                list(labels),
                format_func=lambda c: labels[c],
                key=f"r_{pid}",
                placeholder="Pick one",
            )
            st.text_area("Comment", key=f"rc_{pid}", height=80)
            st.button("Reject", shortcut="x", key="reject", on_click=on_reject, args=(pid,))
    elif p.get("decisions"):
        st.subheader("Decisions")
        for d in p["decisions"]:
            who = d.get("reviewer_name") or d.get("reviewer_sub") or d.get("decided_by")
            st.text(show_bidi(f"{d['verdict']} by {who}: {', '.join(d['reason_codes'])} {d['comment']}"))
    with st.container(key="timeline_link"):
        st.page_link(
            "pages/timeline.py", label="Timeline", icon=":material/timeline:", query_params={"id": pid}
        )
    st.subheader("Why it is here")
    review_parts.why_here(p)
    st.subheader("Context")
    review_parts.context(p.get("context") or {})
    st.subheader("Agent history")
    st.text(show_bidi(p.get("agent_name") or p["agent_id"]))
    review_parts.history(p["agent_id"])
