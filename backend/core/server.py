"""How ``signoff serve`` runs uvicorn: limits on what a client may hold open.

* Request heads are limited to ``SIGNOFF_MAX_HEADER_BYTES`` (h11 answers 400 past it).
* A request must arrive whole (head and body) within ``SIGNOFF_REQUEST_READ_TIMEOUT_SECONDS``
  of the connection opening or of the previous response; a client trickling bytes to keep
  a connection open (slow-loris) is cut off. uvicorn's keep-alive timeout alone does not do
  this: every byte received restarts it.
* An idle keep-alive connection is closed after ``SIGNOFF_KEEP_ALIVE_SECONDS``.
"""

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from backend.core.settings import get_settings


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = get_settings().request_read_timeout_seconds
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            self._disarm()  # the whole request is in: the app takes as long as it takes

    def on_response_complete(self) -> None:
        self._arm()  # the next request on this connection must arrive in time too
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self._read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_options() -> dict[str, Any]:
    settings = get_settings()
    return {
        "http": GuardedH11Protocol,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_seconds,
    }
