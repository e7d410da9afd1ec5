"""Helpers shared by the pages: roles, claims, and rendering untrusted text safely."""

import contextlib
import json
import os
import re
import string
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from ui import client

REVIEWER = os.environ.get("SIGNOFF_REVIEWER_ROLE", "reviewer")
ADMIN = os.environ.get("SIGNOFF_ADMIN_ROLE", "admin")
AUDITOR = os.environ.get("SIGNOFF_AUDITOR_ROLE", "auditor")
ROLES_CLAIM = os.environ.get("SIGNOFF_OIDC_ROLES_CLAIM", "groups")

_MD_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")
# Bidi controls can make text read differently from what it is ("evil\u202etxt.exe").
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def roles() -> set[str]:
    groups = st.user.get(ROLES_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    return {str(g) for g in groups}


def md_escape(text: Any) -> str:
    """Escape every Markdown-significant character, for the rare label that must be Markdown."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def show_bidi(text: str) -> str:
    """Make invisible direction overrides visible instead of letting them reorder the text."""
    return _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def untrusted_text(text: Any, limit: int = 20_000) -> None:
    """Agent- or customer-supplied text: never Markdown/HTML, long text folded."""
    value = show_bidi(text if isinstance(text, str) else json.dumps(text, indent=2, ensure_ascii=False))
    if len(value) > limit:
        st.code(value[:limit], language=None, wrap_lines=True)
        st.caption(f"Showing the first {limit:,} of {len(value):,} characters.")
        with st.expander("Show everything"):
            st.code(value, language=None, wrap_lines=True, height=400)
    else:
        st.code(value, language=None, wrap_lines=True)


def error(problem: client.ApiProblem) -> None:
    st.error(md_escape(problem.message), icon=":material/error:")


def reason_label(code: str, kind: dict[str, Any] | None = None) -> str:
    """A reason code's label from its action type, else the code in plain words."""
    for c in (kind or {}).get("reason_codes") or []:
        if c.get("code") == code and c.get("label"):
            return str(c["label"])
    return code.replace("_", " ").capitalize()


def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def time_left(expires_at: str | None) -> str:
    at = parse_ts(expires_at)
    if at is None:
        return "-"
    seconds = int((at - datetime.now(UTC)).total_seconds())
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def money(value: Any, currency: str | None) -> str:
    try:
        return f"{float(value):,.2f} {currency or ''}".strip()
    except (TypeError, ValueError):
        return str(value)


def currency_of(payload: dict[str, Any], field: str) -> str | None:
    if isinstance(payload.get("currency"), str):
        return str(payload["currency"])
    return "USD" if field.endswith("_usd") else None


def format_value(payload: dict[str, Any], field: str, value: Any) -> str:
    if "amount" in field and isinstance(value, int | float):
        return money(value, currency_of(payload, field))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def release_claim() -> None:
    """Give back the item this session holds, if any (leaving the review screen)."""
    held = st.session_state.pop("claimed", None)
    if held:
        # Expired or decided meanwhile: nothing left to release.
        with contextlib.suppress(client.ApiProblem):
            client.delete(f"/v1/proposals/{held}/claim")


def unavailable(what: str) -> None:
    st.info(f"{what} is not available on this server yet.", icon=":material/construction:")


def guarded(render: Any) -> None:
    """Run `render()` and show API problems calmly: for fragments, whose reruns skip ui/app.py."""
    try:
        render()
    except (client.SessionExpired, client.LoginRefused) as problem:
        login_notice(problem)
    except client.NotAvailable:
        unavailable("This part of Signoff")
    except client.ApiProblem as problem:
        error(problem)


# Words a field name is made of, as a person would say them (`amount_usd` -> "Amount (USD)").
_WORDS = {"id": "", "usd": "(USD)", "eur": "(EUR)", "url": "URL", "uri": "URI", "sub": "user"}


def label(field: str, schema: dict[str, Any] | None = None) -> str:
    """A field's label: the schema's `title`, else the field name in plain words."""
    spec = ((schema or {}).get("properties") or {}).get(field) or {}
    if isinstance(spec, dict) and spec.get("title"):
        return str(spec["title"])
    words = [_WORDS.get(w, w) for w in field.split("_")]
    text = " ".join(w for w in words if w) or field
    return text[:1].upper() + text[1:]


def local_time(value: str | None, seconds: bool = False) -> str:
    """An API timestamp in the viewer's time zone (the browser's, as Streamlit reports it)."""
    at = parse_ts(value)
    if at is None:
        return "-"
    tz = None
    with contextlib.suppress(Exception):
        from zoneinfo import ZoneInfo

        name = st.context.timezone
        tz = ZoneInfo(name) if name else None
    shown = at.astimezone(tz) if tz else at.astimezone()
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def login_notice(problem: client.ApiProblem) -> None:
    """A refused login says what the server said; only an expired token says "expired"."""
    if isinstance(problem, client.LoginRefused):
        st.error(md_escape(f"The server refused your login: {problem.message}"), icon=":material/lock:")
    else:
        st.warning("Your session expired. Log in again to continue.", icon=":material/schedule:")
    # Straight to the provider (no end-session page); ui/app.py reopens the case afterwards.
    from ui.state import login_again

    st.button("Log in again", type="primary", on_click=login_again, key="login_again")
