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
from starlette.types import ASGIApp, Message, Receive, Scope, Send
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
            # No error from the provider, yet the login may still fail here (the code could
            # not be exchanged for tokens, a stale or replayed callback): Streamlit then
            # redirects without setting its login cookie, and logs why. Say so on the screen.
            base = scope["path"].rstrip("/")[: -len(CALLBACK)]
            await self.app(scope, receive, _unfinished_login_noted(send, base))
            return
        await self.app(scope, receive, send)


UNFINISHED = {
    "login_error": "login_not_completed",
    "login_error_description": (
        "The identity provider sent you back, but the console could not complete the login "
        "(the sign-in code was refused or had expired). Log in again; if it keeps failing, "
        "the console's OIDC settings need checking (its log says why)."
    ),
}


def _logged_in(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the response sets Streamlit's login cookie (not merely clears it)."""
    for name, value in headers:
        if name.lower() != b"set-cookie":
            continue
        cookie = value.decode("latin-1")
        set_to = cookie.split(";", 1)[0].partition("=")[2].strip('"')
        if cookie.startswith("_streamlit_user=") and "Max-Age=0" not in cookie and set_to:
            return True
    return False


def _unfinished_login_noted(send: Send, base: str) -> Send:
    async def noted(message: Message) -> None:
        if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
            headers = list(message.get("headers", []))
            if not _logged_in(headers):
                kept = [(k, v) for k, v in headers if k.lower() not in (b"location", b"content-length")]
                location = f"{base}/?{urlencode(UNFINISHED)}".encode("latin-1")
                message = {**message, "headers": [*kept, (b"location", location), (b"content-length", b"0")]}
        await send(message)

    return noted


app = App(HERE / "app.py", middleware=[Middleware(LoginErrors)])
