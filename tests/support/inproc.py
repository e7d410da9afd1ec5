"""The API served from this process (uvicorn in a thread), for tests and benchmarks that
must look inside it while it serves: the connection pool, the waiting hub."""

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from sqlalchemy import event

from backend.api.deps import get_verifier
from backend.app import create_app
from backend.core.db import get_engine
from backend.core.settings import get_settings
from tests.support.env import CLIENT_ID
from tests.support.servers import free_port


@dataclass
class PoolWatch:
    """The most connections the engine's pool ever had checked out at once."""

    size: int
    in_use: int = 0
    peak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def checkout(self, *_: Any) -> None:
        with self._lock:
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)

    def checkin(self, *_: Any) -> None:
        with self._lock:
            self.in_use -= 1


@dataclass
class InProcessServer:
    url: str
    pool: PoolWatch
    server: uvicorn.Server


@contextlib.contextmanager
def serve(issuer: str, **env: str) -> Iterator[InProcessServer]:
    """Serve the app on a free port in a thread of this process, pointed at the database
    the caller's ``pointed_at`` chose; restores the environment afterwards."""
    names = ("SIGNOFF_OIDC_ISSUER", "SIGNOFF_OIDC_CLIENT_ID", *env)
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update({"SIGNOFF_OIDC_ISSUER": issuer, "SIGNOFF_OIDC_CLIENT_ID": CLIENT_ID, **env})
    get_settings.cache_clear()
    get_verifier.cache_clear()
    engine = get_engine()
    watch = PoolWatch(size=engine.pool.size())  # type: ignore[attr-defined]
    event.listen(engine, "checkout", watch.checkout)
    event.listen(engine, "checkin", watch.checkin)
    port = free_port()
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=4096
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="inproc-api", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the in-process API did not start")
            threading.Event().wait(0.05)
        yield InProcessServer(f"http://127.0.0.1:{port}", watch, server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        event.remove(engine, "checkout", watch.checkout)
        event.remove(engine, "checkin", watch.checkin)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
        get_verifier.cache_clear()
