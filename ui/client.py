"""The console's only way to the backend: httpx with the signed-in person's ID token.

The backend is the judge of what a person may do; this module only carries their token and
turns the standard error shape into exceptions the pages (and `ui/app.py`) show calmly.
"""

import hashlib
import json
import os
from typing import Any

import httpx
import streamlit as st

_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class ApiProblem(Exception):
    """The backend said no (4xx/5xx) in its `{"error": {...}}` shape.

    Whatever else the error object carries (even fields named `status`, `type` or `code`) goes
    into `extra` as one dict, never as keyword arguments, so no body can break the constructor.
    """

    def __init__(
        self, status: int, code: str, message: str, param: Any = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = int(status), str(code), str(message)
        self.param = None if param is None else str(param)
        self.extra: dict[str, Any] = dict(extra or {})


class SessionExpired(ApiProblem):
    """The ID token is missing, expired or refused: the person must log in again."""


class NotAvailable(ApiProblem):
    """The endpoint does not exist on this server (a feature not deployed yet)."""


def api_url() -> str:
    """Where the API is: `SIGNOFF_API_URL`, else `[signoff] api_url` in secrets, else localhost."""
    env = os.environ.get("SIGNOFF_API_URL")
    if env:
        return env.rstrip("/")
    try:
        return str(st.secrets["signoff"]["api_url"]).rstrip("/")
    except (KeyError, FileNotFoundError, AttributeError):
        return "http://127.0.0.1:8000"


@st.cache_resource
def _http(base_url: str) -> httpx.Client:
    # One pooled client per process: keep-alive saves a TCP handshake per call.
    return httpx.Client(base_url=base_url, timeout=_TIMEOUT)


def _token() -> str:
    try:
        token = st.user.tokens["id"]
    except (KeyError, AttributeError) as exc:
        raise SessionExpired(401, "no_token", "Your session has no ID token; log in again.") from exc
    if not token:
        raise SessionExpired(401, "no_token", "Your session has no ID token; log in again.")
    return str(token)


def _access_token() -> dict[str, str]:
    """The access token, when the secrets expose it: the API reads groups from the provider's
    /userinfo with it when the ID token has none (docs/identity.md)."""
    try:
        token = st.user.tokens["access"]
    except (KeyError, AttributeError):
        return {}
    return {"X-Signoff-Access-Token": str(token)} if token else {}


class LoginRefused(ApiProblem):
    """A 401 other than an expired token (wrong audience, unknown issuer...): the problem's own
    message is shown, with a button to log in again."""


def _problem(response: httpx.Response) -> ApiProblem:
    try:
        body = response.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = {}
    code = str(err.get("code") or "http_error")
    message = str(err.get("message") or f"The server answered {response.status_code}.")
    extra = {k: v for k, v in err.items() if k not in ("code", "message", "param")}
    status = response.status_code
    if status == 401:
        # Only an expired token means "your session expired"; other refusals say what they are.
        kind = SessionExpired if code in EXPIRED_CODES else LoginRefused
        return kind(status, code, message, err.get("param"), extra)
    if (status == 404 and code == "not_found") or status == 405:
        return NotAvailable(status, code, message, err.get("param"), extra)
    return ApiProblem(status, code, message, err.get("param"), extra)


# `token_expired` is the expiry code; `no_token` is the console's own (a session without one).
EXPIRED_CODES = frozenset({"token_expired", "no_token"})


def canonical_sha256(payload: Any) -> str:
    """Hex SHA-256 of the payload as canonical JSON (keys sorted, "," and ":", UTF-8, no ASCII
    escaping): the backend's `payload_sha256`, computed here when an older server omits it."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def request(method: str, path: str, **kwargs: Any) -> Any:
    """Call the API as the signed-in person; the decoded JSON body, or raise ApiProblem."""
    headers = {"Authorization": f"Bearer {_token()}", **_access_token(), **kwargs.pop("headers", {})}
    try:
        response = _http(api_url()).request(method, path, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        raise ApiProblem(
            503, "api_unreachable", f"The Signoff API at {api_url()} cannot be reached."
        ) from exc
    if response.status_code >= 400:
        raise _problem(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def get(path: str, **params: Any) -> Any:
    return request("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})


def post(path: str, body: Any = None) -> Any:
    return request("POST", path, json=body)


def put(path: str, body: Any = None) -> Any:
    return request("PUT", path, json=body)


def delete(path: str) -> Any:
    return request("DELETE", path)
