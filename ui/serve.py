"""Signoff console server: `streamlit run ui/serve.py` serves the pages of `ui/app.py`.

It exists for one reason: when the identity provider sends the browser back with an error
(`/oauth2callback?error=access_denied&error_description=...`, RFC 6749 section 4.1.2.1),
Streamlit's own callback logs it and redirects to `/` with the error dropped, so the person
would see the plain login screen again with no reason. The middleware below answers that one
request itself: it redirects to `/` with the error carried in the query string
(`login_error`, `login_error_description`), where `ui/app.py` shows it on the login screen.
Every other request, the successful callback included, goes to Streamlit untouched.
"""

from pathlib import Path
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from streamlit.starlette import App

HERE = Path(__file__).resolve().parent
CALLBACK = "/oauth2callback"
# The provider's text is untrusted and goes into a URL: bounded, like any input.
MAX_ERROR = 100
MAX_DESCRIPTION = 500


class LoginErrors:
    """ASGI middleware: a provider's error on the OIDC callback reaches the login screen."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/").endswith(CALLBACK):
            query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
            if query.get("error"):
                shown = {"login_error": query["error"][:MAX_ERROR]}
                if query.get("error_description"):
                    shown["login_error_description"] = query["error_description"][:MAX_DESCRIPTION]
                base = scope["path"].rstrip("/")[: -len(CALLBACK)]
                response = RedirectResponse(f"{base}/?{urlencode(shown)}", status_code=302)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


app = App(HERE / "app.py", middleware=[Middleware(LoginErrors)])
