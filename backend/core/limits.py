"""Refuse request bodies over the size limit before they reach the app (413), and URLs
with NUL characters, which no database column can hold (422)."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import error_body
from backend.core.responses import JsonResponse


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parser lets it through as a 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"Request bodies are limited to {max_bytes} bytes.")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        started = False

        async def _receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, _receive, _send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = error_body(413, "request_too_large", f"Request bodies are limited to {self.max_bytes} bytes.")
        await JsonResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)


class RefuseNul:
    """A NUL (``%00``) in the path or query string: 422 before any route reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope.get("path", "").encode()
            query = scope.get("query_string", b"")
            for part, where in ((raw, "path"), (query, "query")):
                if b"%00" in part or b"\x00" in part:
                    message = f"The {where} may not contain NUL characters."
                    body = error_body(422, "invalid_value", message, where)
                    await JsonResponse(body, status_code=422)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
