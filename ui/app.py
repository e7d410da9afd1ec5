"""Signoff console pages: served by `streamlit run ui/serve.py` (or `streamlit run ui/app.py`,
which lacks only the provider's login errors).

Login is OIDC through `st.login` (Authlib); pages are chosen by the person's roles (the
`groups` claim), but the backend re-checks every call, so hiding a page is courtesy, not
security.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    # `streamlit run ui/app.py` from a checkout: make the `ui` package importable.
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402

from ui import client, style  # noqa: E402
from ui.common import (  # noqa: E402
    ADMIN,
    AUDITOR,
    REVIEWER,
    error,
    login_notice,
    release_claim,
    roles,
    show_bidi,
)
from ui.state import case_to_reopen  # noqa: E402

# Not `pages/`: Streamlit would list that folder's raw file names in the sidebar on first load.
PAGES = HERE / "views"

st.set_page_config(page_title="Signoff", page_icon=":material/verified_user:", layout="wide")


def login_screen() -> None:
    st.title("Signoff")
    st.write("Human approval for the actions of AI agents.")
    login_error()
    st.button("Log in", type="primary", on_click=st.login, icon=":material/login:")


def login_error() -> None:
    """The identity provider's refusal, carried here by ui/serve.py from the OIDC callback.

    The provider's words are untrusted: shown as plain text (st.text, no Markdown), never as
    a link or HTML, with direction overrides made visible."""
    code = st.query_params.get("login_error")
    if not code:
        return
    with st.container(key="login_error", border=True):
        # ui/serve.py's own code when the provider said nothing but the login still failed.
        ours = code == "login_not_completed"
        headline = "The login did not complete." if ours else "The identity provider did not log you in."
        st.error(headline, icon=":material/lock:")
        st.text(show_bidi(f"Error: {code}"))
        description = st.query_params.get("login_error_description")
        if description:
            st.text(show_bidi(description if ours else f"Provider says: {description}"))
        st.caption("Log in again, or ask your administrator if this keeps happening.")


def build_navigation(signed_in: bool = True) -> st.navigation:
    # Signed out, every page is known (so a bookmarked /queue shows the login, not "Page not
    # found") and the login screen is drawn in its place.
    mine = roles() if signed_in else {REVIEWER, ADMIN, AUDITOR}
    review: list[st.Page] = []
    manage: list[st.Page] = []
    if mine & {REVIEWER, ADMIN}:
        review += [
            st.Page(PAGES / "queue.py", title="Queue", icon=":material/inbox:", url_path="queue"),
            st.Page(PAGES / "review.py", title="Review", icon=":material/fact_check:", url_path="review"),
            st.Page(PAGES / "rejections.py", title="Decided", icon=":material/block:", url_path="decided"),
            st.Page(PAGES / "metrics.py", title="Metrics", icon=":material/monitoring:", url_path="metrics"),
            st.Page(PAGES / "timeline.py", title="Timeline", icon=":material/timeline:", url_path="timeline"),
        ]
    if ADMIN in mine:
        manage += [
            st.Page(PAGES / "agents.py", title="Agents", icon=":material/smart_toy:", url_path="agents"),
            st.Page(PAGES / "policies.py", title="Policies", icon=":material/policy:", url_path="policies"),
        ]
    if mine & {ADMIN, AUDITOR}:
        manage.append(
            st.Page(
                PAGES / "audit.py",
                title="Audit",
                icon=":material/receipt_long:",
                url_path="audit",
            )
        )
    sections = {k: v for k, v in {"Review": review, "Manage": manage}.items() if v}
    if not sections:
        sections = {"": [st.Page(no_role, title="No access", url_path="no-access")]}
    # The default page answers "/" only (Streamlit ignores a default page's url_path), so it is a
    # hidden one that moves on to the person's first page: then /queue and /audit both bookmark.
    first = next(iter(sections.values()))[0]

    def home() -> None:
        st.switch_page(first)

    landing = st.Page(home, title="Signoff", url_path="home", default=True, visibility="hidden")
    sections = {k: (v if n else [landing, *v]) for n, (k, v) in enumerate(sections.items())}
    return st.navigation(sections, position="sidebar" if signed_in else "hidden")


def no_role() -> None:
    st.info(
        "You are signed in, but none of your groups gives access to Signoff. "
        f"Ask an administrator for the '{REVIEWER}' or '{ADMIN}' role."
    )


def sidebar() -> None:
    with st.sidebar:
        # Name and groups come from the identity provider: shown as plain text.
        st.text(str(st.user.get("name") or st.user.get("email") or st.user.get("sub")))
        st.caption("Roles")
        st.text(", ".join(sorted(roles())) or "none")
        st.button("Log out", on_click=st.logout, icon=":material/logout:", key="logout")


def main() -> None:
    style.apply()
    if not st.user.is_logged_in:
        build_navigation(signed_in=False)
        login_screen()
        return
    nav = build_navigation()
    sidebar()
    reopen = case_to_reopen()
    if reopen:
        # Back from "Log in again": the case that was open when the session ran out.
        st.session_state["current"] = reopen
        st.switch_page(str(PAGES / "review.py"))
    if nav.url_path != "review":
        # Leaving the review screen gives the item back to the queue.
        release_claim()
    try:
        nav.run()
    except (client.SessionExpired, client.LoginRefused) as problem:
        login_notice(problem)
    except client.NotAvailable:
        st.info("This part of Signoff is not available on this server yet.", icon=":material/construction:")
    except client.ApiProblem as problem:
        error(problem)


main()
