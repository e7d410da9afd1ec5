"""Group commit for the HTTP path: one writer thread per process places what has queued up.

Requests hand their proposal to :data:`placer` and await the answer. The writer thread
takes everything waiting (up to :data:`MAX_BATCH`) and places it as one batch, so under
load many proposals share a transaction and its commit. One writer per process is
enough: batches are serial on SQLite (one writer) and on PostgreSQL (the audit head),
and the event loop keeps parsing requests while the writer waits on the database.

When idle, a proposal is placed alone at once. Under load (the previous batch held at
least :data:`LINGER_AFTER` proposals) the writer first waits up to
``SIGNOFF_PLACEMENT_LINGER_MS`` (1 ms by default) for more to arrive, as PostgreSQL's
``commit_delay`` does for commits when ``commit_siblings`` others are active; it stops
early after a quiet spell of a quarter of that. The wait costs each proposal at most that
millisecond, and pays for itself: a batch costs about 3 ms however small (a dozen
statements), and the event loop, which needs the GIL the writer would otherwise hold,
uses the pause to read the requests that fill the batch. On 2 cores with PostgreSQL it
took the server's CPU per proposal from 1.2-1.4 to 1.05-1.3 ms in back-to-back runs
(docs/operations.md).
"""

import asyncio
import queue
import threading
import time

import structlog
from opentelemetry.trace import Span

from backend.core.settings import get_settings
from backend.observability import tracing
from backend.proposals.batch import Placed, Placement
from backend.proposals.placement import place_batch

log = structlog.get_logger()

MAX_BATCH = 64
# A batch at least this large means requests are arriving together: linger before the next.
LINGER_AFTER = 4
# One writer per process: a second one only adds lock contention (bench/ingest.py on
# PostgreSQL fell from about 470/s to 390/s with two and 260/s with three; measured before
# the benchmark's idempotency keys were fixed, so the figures include replays).
WRITERS = 1

# The request's span rides along (tracing on), to be annotated and linked to its batch.
_Waiter = tuple[Placement, asyncio.AbstractEventLoop, "asyncio.Future[Placed]", Span | None]


class Placer:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Waiter] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def place(self, item: Placement) -> Placed:
        """Place one proposal with whatever else is waiting; raises its refusal as ApiError."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Placed] = loop.create_future()
        self._start()
        self._queue.put((item, loop, future, tracing.current_span()))
        return await future

    def _start(self) -> None:
        if len(self._threads) == WRITERS:
            return
        with self._lock:
            while len(self._threads) < WRITERS:
                thread = threading.Thread(target=self._run, name="signoff-placer", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _collect(self, linger: float) -> list[_Waiter]:
        """The next batch: the first proposal to arrive and whatever else is waiting; then,
        for up to ``linger`` seconds, what keeps arriving, until a quiet spell of a quarter
        of that (the burst has been read) or :data:`MAX_BATCH`."""
        waiting = [self._queue.get()]
        deadline = time.monotonic() + linger
        while len(waiting) < MAX_BATCH:
            try:
                waiting.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                waiting.append(self._queue.get(timeout=min(remaining, linger / 4)))
            except queue.Empty:
                break
        return waiting

    def _run(self) -> None:
        linger = get_settings().placement_linger_ms / 1000
        busy = False
        while True:
            waiting = self._collect(linger if busy else 0.0)
            busy = len(waiting) >= LINGER_AFTER
            outcomes: list[Placed | BaseException]
            with tracing.placement_batch([span for _, _, _, span in waiting]) as batch:
                try:
                    outcomes = list(place_batch([item for item, _, _, _ in waiting]))
                except BaseException as exc:
                    log.exception("placement batch failed", size=len(waiting))
                    outcomes = [exc] * len(waiting)
            # One wake-up per event loop, not one per proposal: each is a write to the loop's pipe.
            answers: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
            for (_, loop, future, span), outcome in zip(waiting, outcomes, strict=True):
                answers.setdefault(loop, []).append((future, outcome, span))
            for loop, settled in answers.items():
                loop.call_soon_threadsafe(_settle, settled, batch)


_Answer = tuple["asyncio.Future[Placed]", "Placed | BaseException", Span | None]


def _settle(answers: list[_Answer], batch: tracing.Batch | None) -> None:
    """On the event loop: each request's span learns what became of it (off the writer
    thread, tracing on), then the request its answer."""
    for future, outcome, span in answers:
        try:
            tracing.placed(span, outcome, batch)
        except Exception:  # a trace is never worth an unanswered request
            log.warning("placement_trace_failed", exc_info=True)
        if future.done():  # the client went away; its proposal stands (its key replays it)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


placer = Placer()

__all__ = ["MAX_BATCH", "Placed", "Placement", "placer"]
