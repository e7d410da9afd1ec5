"""Per-agent rate limits: 429 ``rate_limited`` with ``Retry-After``.

Requests that carry an agent's API key are counted per key in fixed windows of
``SIGNOFF_AGENT_RATE_WINDOW_SECONDS``; past ``SIGNOFF_AGENT_RATE_LIMIT`` requests in a
window the rest of it is refused, before authentication or any other database work. On
PostgreSQL the count lives in an unlogged table, so the limit holds across every replica;
on SQLite (one node) it is kept in process. ``SIGNOFF_AGENT_RATE_LIMIT=0`` turns it off.
If the count cannot be taken (the database is down) the request goes on, to get its 503.
"""

import math
import threading
import time

import structlog
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.agents import keys
from backend.core.db import get_engine
from backend.core.errors import error_body
from backend.core.responses import JsonResponse

log = structlog.get_logger()

_HIT = text(
    "INSERT INTO rate_limit_windows (key_hash, window_start, hits) VALUES (:k, :w, 1)"
    " ON CONFLICT (key_hash, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1"
    " RETURNING hits"
)
_PURGE = text("DELETE FROM rate_limit_windows WHERE window_start < :w")


class Counter:
    """Hits per key in the current window: shared through PostgreSQL, or in process."""

    def __init__(self, window_seconds: int) -> None:
        self.window = window_seconds
        self._lock = threading.Lock()
        self._local: dict[str, tuple[int, int]] = {}
        self._purged = 0

    def hit(self, key_hash: str, now: float) -> int:
        window = int(now // self.window) * self.window
        engine = get_engine()
        if engine.dialect.name != "postgresql":
            with self._lock:
                start, hits = self._local.get(key_hash, (window, 0))
                if window <= start:
                    # The same window, or a request stamped in the one before that reached the
                    # counter late (the thread pool does not keep order): it counts in the newer
                    # window, never restarting its count.
                    window, hits = start, hits + 1
                else:
                    hits = 1
                self._local[key_hash] = (window, hits)
                if window != self._purged:  # forget the keys of windows gone by
                    self._local = {k: v for k, v in self._local.items() if v[0] == window}
                    self._purged = window
                return hits
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            hits = int(conn.execute(_HIT, {"k": key_hash, "w": window}).scalar_one())
            if window != self._purged:
                self._purged = window
                conn.execute(_PURGE, {"w": window - 10 * self.window})
        return hits


class AgentRateLimit:
    def __init__(self, app: ASGIApp, limit: int, window_seconds: int) -> None:
        self.app = app
        self.limit = limit
        self.counter = Counter(window_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        token = _api_key(scope)
        if token is not None:
            now = time.time()
            try:
                hits = await run_in_threadpool(self.counter.hit, keys.hash_key(token), now)
            except Exception as exc:  # no count, no limit: the request meets the outage itself
                log.warning("rate_limit_unavailable", error=type(exc).__name__)
                hits = 0
            if hits > self.limit:
                window = self.counter.window
                retry = max(1, math.ceil(window - now % window))
                message = f"More than {self.limit} requests in {window} s from this API key; retry later."
                body, headers = error_body(429, "rate_limited", message), {"Retry-After": str(retry)}
                refusal = JsonResponse(body, status_code=429, headers=headers)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _api_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token.startswith(keys.PREFIX):
                return token
    return None
