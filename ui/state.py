"""Per-session caches of slow-changing backend data (action types), so pages stay fast."""

from typing import Any

import streamlit as st

from ui import client


def action_types() -> dict[str, dict[str, Any]]:
    """Action types by name, fetched once per session (they change rarely)."""
    cached = st.session_state.get("_action_types")
    if cached is None:
        cached = {t["name"]: t for t in client.get("/v1/action-types")["items"]}
        st.session_state["_action_types"] = cached
    return cached


def me() -> str:
    return str(st.user.get("sub") or "")


@st.cache_resource
def _return_to() -> dict[str, str]:
    # Process-wide, keyed by the person's `sub`: a new login starts a new session, so the open
    # case has to wait outside session_state for the person to come back.
    return {}


def remember_open_case() -> None:
    pid = st.session_state.get("current")
    if pid and me():
        _return_to()[me()] = str(pid)


def login_again() -> None:
    """The "Log in again" button: note the open case, then straight to the provider."""
    remember_open_case()
    st.login()


def case_to_reopen() -> str | None:
    """The case that was open when this person last pressed "Log in again" (once)."""
    return _return_to().pop(me(), None) if me() else None
