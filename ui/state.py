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
