"""Review: one screen that explains a case and takes the decision; the next case opens at once.

Deciding is safe by construction: every decision names the payload it was made on
(`seen_payload_sha256`), a shortcut refuses while an edit is pending, and every refusal from
the backend becomes a calm line in the one notice slot above the case.
"""

import time
from typing import Any

import streamlit as st

from ui import client, review_parts
from ui.common import label, md_escape, reason_label, release_claim, show_bidi, time_left
from ui.signals import signals
from ui.state import action_types, me

# Candidates per queue read when looking for the next case: the first one usually does, and the
# server judges rows only until a page is full, so a short page is the fast next case.
PAGE = 20
# How far Review next looks through the queue (pages of PAGE) before saying nothing is left.
MAX_PAGES = 40
# A skipped case comes back after this long: skipping postpones, it does not hide for good.
SKIP_SECONDS = 30 * 60
# Asking the backend "may I approve this?" for each candidate costs a call: at most this many.
RIGHTS_CHECKS = 20


def skipped() -> dict[str, float]:
    """Skipped case ids and when, the expired ones dropped."""
    marks: dict[str, float] = st.session_state.setdefault("skipped_at", {})
    now = time.monotonic()
    for pid in [p for p, at in marks.items() if now - at > SKIP_SECONDS]:
        del marks[pid]
    return marks


def may_approve(pid: str) -> dict[str, Any] | None:
    """The backend's advice on whether I may approve `pid` (None: this server cannot say)."""
    cache: dict[str, Any] = st.session_state.setdefault("rights", {})
    if pid not in cache:
        try:
            cache[pid] = client.get(f"/v1/proposals/{pid}/approval-rights")
        except client.NotAvailable:
            cache[pid] = None
    return cache[pid]


def next_item() -> str | None:
    """The nearest-deadline pending case I may decide, not skipped and not held by someone else.

    Pages on through the queue (a run of skips never makes it look empty). Servers that answer
    `decidable=true` filter on their side; otherwise the approval advice is asked per candidate.
    """
    marks = skipped()
    cursor: str | None = None
    checks = 0
    refused_types: set[str] = set()
    st.session_state["not_mine"] = 0
    for _ in range(MAX_PAGES):
        page = client.get("/v1/queue", limit=PAGE, cursor=cursor, decidable="true")
        for item in page["items"]:
            claim = item.get("claim")
            if item["id"] in marks or (claim and claim["by"] != me()):
                continue
            server_filters = "approvals_required" in item
            if not server_filters:
                if checks >= RIGHTS_CHECKS and item["action_type"] in refused_types:
                    # Out of checks: an action type refused so far is taken as refused.
                    st.session_state["not_mine"] += 1
                    continue
                checks += 1
                rights = may_approve(item["id"])
                if rights is not None and not rights.get("approve"):
                    refused_types.add(item["action_type"])
                    st.session_state["not_mine"] += 1
                    continue
            return str(item["id"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if not checks:
        # The server filtered (`decidable=true`): what it left out waits for other reviewers.
        try:
            pending = int(client.get("/v1/queue/counts").get("pending", 0))
        except client.ApiProblem:
            pending = 0
        st.session_state["not_mine"] = max(0, pending - len(marks))
    return None


def take_claim(pid: str) -> str | None:
    """Claim the case on open; a message if someone else holds it."""
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


def notice(pid: str, kind: str, text: str, next_button: bool = False) -> None:
    """The one message shown above a case: replaces whatever was there (no stale toasts)."""
    st.session_state["review_notice"] = {"pid": pid, "kind": kind, "text": text, "next": next_button}


def open_case(pid: str | None) -> None:
    st.session_state["current"] = pid
    # Drafts belong to the case they were typed on.
    for key in ("reject_note", "approve_note"):
        st.session_state[key] = ""


def _decided_message(pid: str) -> str:
    """ "Decided by Lee Lead: approved." from the proposal as it now stands."""
    try:
        p = client.get(f"/v1/proposals/{pid}")
    except client.ApiProblem:
        return "Someone else decided this case first."
    last = (p.get("decisions") or [{}])[-1]
    who = last.get("reviewer_name") or last.get("reviewer_sub") or last.get("decided_by") or "someone else"
    return f"Decided by {who}: {p['status']}."


def _calm(pid: str, problem: client.ApiProblem) -> None:
    """Every refusal as one sentence and, where it helps, a way on."""
    code = problem.code
    if code == "already_decided":
        notice(pid, "info", _decided_message(pid), next_button=True)
    elif code == "stale_view":
        st.session_state.pop("proposal_cache", None)
        notice(pid, "warning", "This case changed while you were looking at it. Check it again, then decide.")
    elif code == "claimed":
        notice(pid, "warning", problem.message, next_button=True)
    elif code == "already_approved":
        notice(pid, "info", "You have already approved this case; it waits for another approver.", True)
    elif code == "field_not_editable" and problem.param:
        notice(pid, "error", f"{label(problem.param.split('.')[-1])} cannot be edited for this action.")
    else:
        notice(pid, "error", problem.message)


def _post_decision(pid: str, body: dict[str, Any]) -> None:
    try:
        client.post(f"/v1/proposals/{pid}/decisions", body)
    except client.ApiProblem as problem:
        older_server = problem.status == 422 and "seen_payload_sha256" in f"{problem.param} {problem.message}"
        if not older_server:
            raise
        # A server from before stale-view checks refuses the unknown field: decide without it.
        plain = {k: v for k, v in body.items() if k != "seen_payload_sha256"}
        client.post(f"/v1/proposals/{pid}/decisions", plain)


def decide(pid: str, body: dict[str, Any], done: str) -> None:
    """Run in the button's callback (before the rerun), so the next case is drawn in one pass."""
    seen = st.session_state.get(f"seen_{pid}")
    try:
        _post_decision(pid, {**body, "seen_payload_sha256": seen})
        st.session_state.pop("claimed", None)  # a decision ends the claim on the server
        st.session_state["decided_here"] = st.session_state.get("decided_here", 0) + 1
        drop_edit(pid)
        summary = st.session_state.get(f"summary_{pid}", "")
        following = next_item()
        open_case(following)
        notice(following or "", "success", f"{done}: {summary[:80]}")
    except (client.SessionExpired, client.LoginRefused) as problem:
        st.session_state["login_problem"] = problem
    except client.ApiProblem as problem:
        _calm(pid, problem)


def pending_edit(pid: str) -> dict[str, Any] | None:
    """The edited payload on the Edit tab, if it differs from what the agent proposed."""
    edited = st.session_state.get(f"edited_{pid}")
    original = st.session_state.get(f"payload_{pid}")
    return edited if edited is not None and edited != original else None


def drop_edit(pid: str) -> None:
    st.session_state.pop(f"edited_{pid}", None)
    for key in [k for k in st.session_state if str(k).startswith(f"e_{pid}_")]:
        del st.session_state[key]
    st.session_state.pop(f"edit_reason_{pid}", None)


def on_approve(pid: str) -> None:
    if pending_edit(pid) is not None:
        # What is on screen is the edit: approving the original from a shortcut would pay the
        # amount the reviewer just crossed out.
        notice(
            pid,
            "error",
            "An edit is pending: approve it with “Approve with these changes”, or discard the edit first.",
        )
        return
    decide(pid, {"verdict": "approve", "comment": st.session_state.get("approve_note", "")}, "Approved")


def on_approve_edited(pid: str) -> None:
    edited = pending_edit(pid)
    why = str(st.session_state.get(f"edit_reason_{pid}") or "").strip()
    if edited is None:
        notice(pid, "error", "Nothing is changed yet.")
        return
    if not why:
        notice(pid, "error", "Say why you changed it (the reason is kept with the decision).")
        return
    decide(pid, {"verdict": "approve", "edited_payload": edited, "comment": why}, "Approved with changes")


def on_reject(pid: str, codes: list[str] | None = None) -> None:
    codes = codes or st.session_state.get(f"r_{pid}") or []
    if not codes:
        notice(pid, "error", "Pick at least one reason.")
        return
    body = {"verdict": "reject", "reason_codes": codes, "comment": st.session_state.get("reject_note", "")}
    decide(pid, body, "Rejected")


def on_next(pid: str) -> None:
    try:
        release_claim()
        skipped()[pid] = time.monotonic()
        open_case(next_item())
        st.session_state.pop("review_notice", None)
    except (client.SessionExpired, client.LoginRefused) as problem:
        st.session_state["login_problem"] = problem
    except client.ApiProblem as problem:
        notice(pid, "error", problem.message)


def on_unskip() -> None:
    st.session_state["skipped_at"] = {}
    open_case(next_item())


# --- which case ----------------------------------------------------------------------

# A link or a reload brings its own id; an id this page wrote itself is only the URL keeping up
# (after a decision or a skip the new case is already `current`, the URL still the old one).
asked = st.query_params.get("id")
if asked and asked != st.session_state.get("url_case"):
    open_case(asked)
if "current" not in st.session_state or st.session_state.get("current") is None:
    st.session_state["current"] = next_item()
pid = st.session_state.get("current")

if problem := st.session_state.pop("login_problem", None):
    raise problem
slot = st.container(key="notice_slot")  # always present: a banner never shifts the tabs below
shown = st.session_state.get("review_notice")
if shown and shown["pid"] in (pid, "") and shown["kind"] == "success":
    st.session_state.pop("review_notice", None)
    slot.success(md_escape(show_bidi(shown["text"])), icon=":material/check_circle:")

if not pid:
    st.query_params.pop("id", None)
    st.session_state["url_case"] = None
    st.title("Review")
    waiting = len(skipped())
    others = st.session_state.get("not_mine", 0)
    if waiting:
        st.info(f"Nothing new to review: you skipped {waiting} case(s).", icon=":material/done_all:")
        st.button("Show the skipped cases again", on_click=on_unskip, key="unskip", type="primary")
    elif others:
        st.info("Nothing left that you can decide.", icon=":material/done_all:")
    else:
        st.success("Nothing left that you can decide.", icon=":material/done_all:")
    if others:
        st.caption(f"{others} other case(s) wait for reviewers with the right to approve them.")
    st.stop()
st.query_params["id"] = pid  # the case is in the URL: shareable, and survives a reload
st.session_state["url_case"] = pid

try:
    p = client.get(f"/v1/proposals/{pid}")
except client.ApiProblem as problem:
    if problem.status not in (404, 422) or isinstance(problem, client.NotAvailable):
        raise
    # A stale or mistyped link: forget it so the next visit starts from the queue.
    st.session_state["current"] = None
    st.query_params.pop("id", None)
    st.warning("That case does not exist.", icon=":material/search_off:")
    st.button("Review next", type="primary", key="after_missing")
    st.stop()

pending = p["status"] == "pending"
held_by_other = take_claim(pid) if pending else None
kind = action_types().get(p["action_type"], {})
schema = kind.get("payload_schema") or {}
payload: dict[str, Any] = p["payload"]
st.session_state[f"payload_{pid}"] = payload
st.session_state[f"summary_{pid}"] = p["summary"] or ""
st.session_state[f"seen_{pid}"] = p.get("payload_sha256") or client.canonical_sha256(payload)
rights = may_approve(pid) if pending and not held_by_other else None
can_approve = rights is None or bool(rights.get("approve"))
warnings = signals(p["summary"] or "", payload, p.get("evidence") or [])

if shown and shown["pid"] == pid and shown["kind"] != "success":
    st.session_state.pop("review_notice", None)
    show = {"error": slot.error, "warning": slot.warning, "info": slot.info}[shown["kind"]]
    show(md_escape(show_bidi(shown["text"])), icon=":material/info:")
    if shown.get("next"):
        slot.button("Next case", type="primary", key="notice_next", on_click=on_next, args=(pid,))

# --- the header: what is asked, pinned while the page scrolls ---------------------------

with st.container(key="case_header", border=True):
    head, side = st.columns([5, 2], vertical_alignment="center")
    with head:
        st.caption(
            md_escape(
                f"{p['action_type']} · risk {kind.get('risk', '?')} · due in {time_left(p['expires_at'])}"
                f" · {p.get('agent_name') or p['agent_id']}"
            )
        )
        with st.container(key="summary"):
            st.markdown(f"### {md_escape(show_bidi(p['summary'] or '(no summary)'))}")
        review_parts.key_facts(payload, schema)
        review_parts.approvals_line(p)
    with side:
        st.button(
            "Skip (n)",
            icon=":material/skip_next:",
            shortcut="n",
            key="next",
            on_click=on_next,
            args=(pid,),
            width="stretch",
        )
        if pending and not held_by_other:
            st.button(
                "Approve (a)",
                type="primary",
                shortcut="a",
                key="approve",
                on_click=on_approve,
                args=(pid,),
                disabled=not can_approve,
                width="stretch",
            )

if warnings:
    with st.container(key="warnings", border=True):
        for w in warnings:
            st.warning(md_escape(show_bidi(w.message)), icon=":material/report:")
        if pending and not held_by_other:
            st.button(
                "Reject as suspected prompt injection (i)",
                shortcut="i",
                key="reject_injection",
                on_click=on_reject,
                args=(pid, ["suspected_prompt_injection"]),
            )
if not pending:
    st.info(f"This case is {p['status']}; nothing left to decide.", icon=":material/info:")
elif held_by_other:
    st.warning(md_escape(show_bidi(held_by_other)), icon=":material/lock:")
elif not can_approve and (rights or {}).get("blocked"):
    st.warning(md_escape(str(rights["blocked"])), icon=":material/block:")
elif not can_approve:
    groups = ", ".join((rights or {}).get("approver_groups") or [])
    who = f"Reviewers in {groups} can approve it." if groups else "No reviewer group can approve it now."
    st.info(md_escape(f"You cannot approve this {p['action_type']}. {who}"), icon=":material/lock_person:")

left, right = st.columns([3, 2], gap="large")
with right:
    if pending and not held_by_other:
        st.subheader("Decision")
        tabs = ["Approve", "Edit and approve", "Reject"]
        approve_tab, edit_tab, reject_tab = st.tabs(tabs, key="decision_tab", bind="query-params")
        with approve_tab:
            st.text_input("Comment (optional)", key="approve_note", bind="query-params")
            st.caption("Approve with the button at the top, or press a.")
        with edit_tab:
            if not can_approve:
                st.caption("You cannot approve this, so you cannot edit it either.")
            else:
                edited = review_parts.edit_form(p, schema, kind.get("editable_fields"))
                st.session_state[f"edited_{pid}"] = edited
                lines = review_parts.diff_lines(payload, edited or payload, schema)
                if lines:
                    st.caption("What changes")
                    st.code("\n".join(lines), language="diff")
                    st.text_input("Why change it (required)", key=f"edit_reason_{pid}", bind="query-params")
                    c1, c2 = st.columns(2)
                    c1.button(
                        "Approve with these changes",
                        type="primary",
                        key="approve_edit",
                        on_click=on_approve_edited,
                        args=(pid,),
                    )
                    c2.button("Discard the edit", key="discard_edit", on_click=drop_edit, args=(pid,))
                else:
                    st.caption("Nothing changed yet.")
        with reject_tab:
            codes = [c for c in kind.get("reason_codes", []) if not c.get("retired")]
            st.multiselect(
                "Reasons",
                [c["code"] for c in codes],
                format_func=lambda c: reason_label(c, kind),
                key=f"r_{pid}",
                placeholder="Pick one",
                bind="query-params",  # drafts are in the URL, so they survive a reload
            )
            st.text_area("Comment", key="reject_note", height=80, bind="query-params")
            st.button("Reject (x)", shortcut="x", key="reject", on_click=on_reject, args=(pid,))
    elif p.get("decisions"):
        st.subheader("Decisions")
        review_parts.decisions(p, kind)
    with st.container(key="timeline_link"):
        st.page_link(
            "views/timeline.py", label="Timeline", icon=":material/timeline:", query_params={"id": pid}
        )
    st.subheader("Why a person decides")
    review_parts.why_here(p, kind)
    st.subheader("Agent history")
    review_parts.history(p["agent_id"], schema)
    st.subheader("Context")
    review_parts.context(p.get("context") or {})
with left:
    st.subheader("Proposed action")
    review_parts.action_table(payload, schema)
    st.subheader("Evidence")
    review_parts.evidence(p.get("evidence") or [], pid)
