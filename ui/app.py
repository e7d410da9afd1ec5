"""Signoff console entry point: `streamlit run ui/app.py`.

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

from ui import client  # noqa: E402
from ui.common import ADMIN, AUDITOR, REVIEWER, error, expired_notice, release_claim, roles  # noqa: E402

PAGES = HERE / "pages"

st.set_page_config(page_title="Signoff", page_icon=":material/verified_user:", layout="wide")


def login_screen() -> None:
    st.title("Signoff")
    st.write("Human approval for the actions of AI agents.")
    st.button("Log in", type="primary", on_click=st.login, icon=":material/login:")


def build_navigation() -> st.navigation:
    mine = roles()
    review: list[st.Page] = []
    manage: list[st.Page] = []
    if mine & {REVIEWER, ADMIN}:
        review += [
            st.Page(
                PAGES / "queue.py", title="Queue", icon=":material/inbox:", url_path="queue", default=True
            ),
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
                default=not review,
            )
        )
    sections = {k: v for k, v in {"Review": review, "Manage": manage}.items() if v}
    if not sections:
        sections = {"": [st.Page(no_role, title="No access", url_path="no-access")]}
    return st.navigation(sections)


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
    if not st.user.is_logged_in:
        login_screen()
        return
    nav = build_navigation()
    sidebar()
    if nav.url_path != "review":
        # Leaving the review screen gives the item back to the queue.
        release_claim()
    try:
        nav.run()
    except client.SessionExpired:
        expired_notice()
    except client.NotAvailable:
        st.info("This part of Signoff is not available on this server yet.", icon=":material/construction:")
    except client.ApiProblem as problem:
        error(problem)


main()
