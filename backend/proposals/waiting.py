"""Wakes long-polling agents the moment a proposal leaves `pending`.

This is the ``waiting`` step of ``backend/on_commit.py``. In one process, a decision
committed in a worker thread sets the asyncio events of the requests waiting on that
proposal. Across API replicas on PostgreSQL, the deciding transaction also runs
``pg_notify`` (delivered on commit) and every replica's listener thread feeds the
notification into its own hub. Waiters still re-read the row every
``poll_fallback_seconds``, so several processes on one SQLite file work too.
"""

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import psycopg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from backend.core import commit

log = structlog.get_logger()

CHANNEL = "signoff_proposals"
_CHANGED = "signoff_changed_proposals"


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    @contextlib.contextmanager
    def subscribe(self, proposal_id: str) -> Iterator[asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(proposal_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                waiters = self._waiters.get(proposal_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[proposal_id]

    def publish(self, proposal_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(proposal_id, ()))
        for loop, ev in waiters:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(ev.set)

    def waiting(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())


hub = Hub()


def proposal_changed(session: Session, proposal_id: str) -> None:
    """Mark a proposal as changed; waiters are woken once the transaction commits."""
    session.info.setdefault(_CHANGED, set()).add(proposal_id)


def _notify_other_replicas(session: OrmSession) -> None:
    changed = session.info.get(_CHANGED)
    if not changed:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        for pid in changed:
            session.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": pid})


def _wake_local(session: OrmSession) -> None:
    for pid in session.info.pop(_CHANGED, ()):
        hub.publish(pid)


def _forget(session: OrmSession) -> None:
    session.info.pop(_CHANGED, None)


COMMIT_STEP = commit.Step(
    "waiting", before_commit=_notify_other_replicas, after_commit=_wake_local, after_rollback=_forget
)


class PgListener(threading.Thread):
    """LISTENs on the notification channel and feeds every replica's hub."""

    def __init__(self, url: str) -> None:
        super().__init__(name="signoff-pg-listener", daemon=True)
        parsed = make_url(url).set(drivername="postgresql")
        self._dsn = parsed.render_as_string(hide_password=False)
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            hub.publish(note.payload)
            except psycopg.Error as exc:
                log.warning("pg_listener_reconnect", error=str(exc))
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
