"""Group commit for writes that each need their own rules: many share one transaction.

A decision or an execution report alone is a handful of statements, but its own
transaction also pays for BEGIN and COMMIT, the audit chain's head, the webhook lookup,
the metrics and the rollups (``backend/on_commit.py``): about as much again. Here one
writer thread per process takes every job that has queued up (up to :data:`MAX_BATCH`)
and runs them in one transaction, each in a savepoint of its own, then commits once.

Each job keeps its own outcome. A job that raises is rolled back to its savepoint, the
notes it left for the commit steps (audit events, proposals to announce) are forgotten
with it, and its caller gets the error; the others carry on. A job that raises
:class:`~backend.core.db.WritesStand` keeps its writes and its caller gets the error once
they are committed. Callers are answered only after the commit, and each job runs in its
caller's context (the request's trace span, its log context). Should the batch itself
fail (a deadlock or serialisation failure on PostgreSQL, say), each job is run again
alone, in a transaction of its own, so one job's trouble never becomes another's.

Locking: on SQLite the batch holds the one write lock, so jobs take turns anyway. On
PostgreSQL each job may name the proposal it writes (``Job.proposal_id``); the batch locks
all of those rows at its start, in id order, so two processes' batches touching the same
proposals queue instead of deadlocking, and concurrent deciders of one proposal still
take turns (``reading.still_pending(for_update=True)`` inside the job finds the lock
held already).
"""

import asyncio
import contextvars
import dataclasses
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from backend.core.db import WritesStand, transaction
from models.proposals import Proposal

log = structlog.get_logger()

_T = TypeVar("_T")

MAX_BATCH = 64


@dataclass(frozen=True)
class Job(Generic[_T]):
    """One unit of work: ``run`` does it in the session it is given (never commits or rolls
    back itself); ``proposal_id`` is the proposal it writes, locked up front."""

    run: Callable[[Session], _T]
    proposal_id: str | None = None
    # The caller's context (its request's trace span, its log context), to run ``run`` in.
    context: contextvars.Context | None = None

    def __call__(self, session: Session) -> _T:
        if self.context is None:
            return self.run(session)
        return self.context.run(self.run, session)


class _Failed:
    """A job's error, as an outcome (distinct from a job that returns an exception)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _notes(session: Session) -> dict[str, Any]:
    """A copy of the commit steps' notes on the session, to restore when a job is undone."""
    return {k: v.copy() if isinstance(v, list | set | dict) else v for k, v in session.info.items()}


def _attempt(session: Session, job: Job[Any]) -> Any:
    saved = _notes(session)
    savepoint = session.begin_nested()
    try:
        try:
            outcome: Any = job(session)
        except WritesStand as kept:
            outcome = _Failed(kept.error)
        savepoint.commit()
        return outcome
    except Exception as exc:
        if savepoint.is_active:
            savepoint.rollback()
        session.info.clear()
        session.info.update(saved)
        return _Failed(exc)


def _lock(session: Session, jobs: Sequence[Job[Any]]) -> None:
    ids = sorted({job.proposal_id for job in jobs if job.proposal_id is not None})
    if len(ids) < 2 or session.get_bind().dialect.name != "postgresql":
        return  # one row: the job's own FOR UPDATE suffices; SQLite: the write lock does
    session.execute(
        select(Proposal.id)
        .where(Proposal.id.in_(ids))  # type: ignore[attr-defined]
        .order_by(Proposal.id)
        .with_for_update()
    )


def _alone(job: Job[Any]) -> Any:
    try:
        with transaction() as session:
            return job(session)
    except Exception as exc:
        return _Failed(exc)


_ALIVE = "signoff_group_commit_alive"
_listening = False


def _keep(session: Session, obj: Any) -> None:
    alive = session.info.get(_ALIVE)
    if alive is not None:
        alive.append(obj)


def _keep_loaded(session: Session) -> None:
    """Hold on to what ``session`` loads until it closes. The listener is registered on
    first use (never by import); for other sessions it is one dictionary lookup."""
    global _listening
    if not _listening:
        event.listen(Session, "loaded_as_persistent", _keep)
        _listening = True
    session.info[_ALIVE] = []


def run_batch(jobs: Sequence[Job[Any]]) -> list[Any]:
    """Run ``jobs`` in one transaction, a savepoint each; returns each one's result, or its
    exception as an instance of :class:`_Failed` (see :func:`unwrap`)."""
    if len(jobs) == 1:
        return [_alone(jobs[0])]
    try:
        with transaction() as session:
            # The session holds what it loads weakly; kept alive for the batch, the action
            # type and agent one job read are there for the next without a query. (Jobs
            # read the proposals they write afresh, with ``populate_existing``.)
            _keep_loaded(session)
            _lock(session, jobs)
            outcomes = [_attempt(session, job) for job in jobs]
        return outcomes
    except DBAPIError:
        log.warning("group commit failed; running its jobs one by one", size=len(jobs), exc_info=True)
        return [_alone(job) for job in jobs]


def unwrap(outcome: Any) -> Any:
    """A job's result, or raise its error."""
    if isinstance(outcome, _Failed):
        raise outcome.error
    return outcome


_Waiter = tuple[Job[Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class Writer:
    """The writer thread: jobs handed to :meth:`run` are done in batches (see the module)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Waiter] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, job: Job[_T]) -> _T:
        """Do ``job`` with whatever else is waiting; its result, or its error raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._start()
        self._queue.put((dataclasses.replace(job, context=contextvars.copy_context()), loop, future))
        return await future

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    def _collect(self) -> list[_Waiter]:
        waiting = [self._queue.get()]
        while len(waiting) < MAX_BATCH:
            try:
                waiting.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return waiting

    def _loop(self) -> None:
        while True:
            waiting = self._collect()
            try:
                outcomes = run_batch([job for job, _, _ in waiting])
            except BaseException as exc:  # never lose the writer thread
                log.exception("group commit failed", size=len(waiting))
                outcomes = [_Failed(exc)] * len(waiting)
            # One wake-up per event loop, not one per job: each is a write to the loop's pipe.
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
            for (_, loop, future), outcome in zip(waiting, outcomes, strict=True):
                answers.setdefault(loop, []).append((future, outcome))
            for loop, settled in answers.items():
                loop.call_soon_threadsafe(_settle, settled)


def _settle(answers: list[tuple["asyncio.Future[Any]", Any]]) -> None:
    for future, outcome in answers:
        if future.done():  # the client went away; what its job wrote stands
            continue
        if isinstance(outcome, _Failed):
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome)


writer = Writer("signoff-writer")
