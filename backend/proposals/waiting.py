"""Wakes long-polling agents the moment a proposal leaves `pending`.

This is the ``waiting`` step of ``backend/on_commit.py``. In one process, a decision
committed in a worker thread sets the asyncio events of the requests waiting on that
proposal. Across API replicas on PostgreSQL, the deciding transaction also runs
``pg_notify`` (delivered on commit) and every replica's listener thread feeds the
notification into its own hub. A :class:`Poller` thread per process re-reads, every
``poll_fallback_seconds`` and in one query, the proposals waited on, so several processes
on one SQLite file work too. A waiter holds no database connection while it waits: it reads
when it starts, and once more when woken or at its deadline.
"""

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import structlog
from sqlalchemy import or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.core import commit
from backend.core.db import read_session
from backend.core.settings import get_settings
from models.common import utcnow
from models.proposals import Proposal, Status

log = structlog.get_logger()

_T = TypeVar("_T")

CHANNEL = "signoff_proposals"
_CHANGED = "signoff_changed_proposals"


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._parked = 0

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

    def parked(self, change: int) -> None:
        """Count the waiters that have read and now wait on their event (no work pending)."""
        with self._lock:
            self._parked += change

    def idle(self) -> int:
        with self._lock:
            return self._parked

    def waited_on(self) -> list[str]:
        with self._lock:
            return list(self._waiters)


hub = Hub()


def proposal_changed(session: Session, proposal_id: str) -> None:
    """Mark a proposal as changed; waiters are woken once the transaction commits."""
    session.info.setdefault(_CHANGED, set()).add(proposal_id)


_NOTIFY = text("SELECT pg_notify(:c, p) FROM unnest(CAST(:ids AS text[])) AS p")


def _notify_other_replicas(session: OrmSession) -> None:
    changed = session.info.get(_CHANGED)
    if not changed:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # One notification per proposal, all in one statement (a group commit changes many).
        session.execute(_NOTIFY, {"c": CHANNEL, "ids": sorted(changed)})


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


class Poller(threading.Thread):
    """The fallback for notifications that cannot reach this process (several processes on
    one SQLite file, a dropped LISTEN connection): every ``interval`` seconds, one query for
    all the proposals this process's agents wait on, in chunks, wakes those that left
    ``pending`` or are past their deadline. Its cost is one short read per interval however
    many agents wait, instead of one read per waiter."""

    CHUNK = 500

    def __init__(self, interval: float) -> None:
        super().__init__(name="signoff-wait-poller", daemon=True)
        self.interval = interval
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception as exc:  # the database may be down; waiters still time out
                log.warning("wait_poll_failed", error=str(exc))

    def poll_once(self) -> int:
        ids = hub.waited_on()
        woken = 0
        for start in range(0, len(ids), self.CHUNK):
            chunk = ids[start : start + self.CHUNK]
            with read_session(snapshot=False) as session:
                done = session.execute(
                    select(Proposal.id).where(
                        Proposal.id.in_(chunk),  # type: ignore[attr-defined]
                        or_(Proposal.status != Status.pending.value, Proposal.expires_at <= utcnow()),
                    )
                ).scalars()
                for pid in done:
                    hub.publish(pid)
                    woken += 1
        return woken

    def stop(self) -> None:
        self._stop.set()


_Slots = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
_READS: _Slots = weakref.WeakKeyDictionary()


def read_slots() -> asyncio.Semaphore:
    """At most ``wait_read_concurrency`` waiters of one event loop use the database at once
    (to authenticate, or to read when thousands arrive or are woken together), so they
    queue here instead of for the pool, and other requests still find a connection."""
    loop = asyncio.get_running_loop()
    slots = _READS.get(loop)
    if slots is None:
        slots = _READS[loop] = asyncio.Semaphore(get_settings().wait_read_concurrency)
    return slots


async def wait_for_decision(
    agent_id: str, proposal_id: str, wait: float, read: Callable[[str, str], tuple[_T, bool]]
) -> _T:
    """Long-poll without holding a database connection: subscribe, read once; if the
    proposal is still pending, wait on the hub (woken by the commit that decides it, by
    LISTEN/NOTIFY from another replica or by the :class:`Poller`) and read once more when
    woken or at the deadline. No connection is held between the reads."""
    deadline = time.monotonic() + wait
    with hub.subscribe(proposal_id) as changed:
        while True:
            # Clear before reading: a decision committed while we read must still wake us.
            changed.clear()
            async with read_slots():
                state, final = await run_in_threadpool(read, agent_id, proposal_id)
            remaining = deadline - time.monotonic()
            if final or remaining <= 0:
                return state
            hub.parked(+1)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=remaining)
            finally:
                hub.parked(-1)
