"""Group commit for the HTTP path: one writer thread per process places what has queued up.

Requests hand their proposal to :data:`placer` and await the answer. The writer thread
takes everything waiting (up to :data:`MAX_BATCH`) and places it as one batch, so under
load many proposals share a transaction and its commit, and when idle a proposal is
placed alone at once: there is no timer to wait for, only whatever the previous batch
left behind. One writer per process is enough: batches are serial on SQLite (one
writer) and on PostgreSQL (the audit head), and the event loop keeps parsing requests
while the writer waits on the database.
"""

import asyncio
import queue
import threading

import structlog

from backend.services.batch import Placed, Placement
from backend.services.placement import place_batch

log = structlog.get_logger()

MAX_BATCH = 64

_Waiter = tuple[Placement, asyncio.AbstractEventLoop, "asyncio.Future[Placed]"]


class Placer:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Waiter] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def place(self, item: Placement) -> Placed:
        """Place one proposal with whatever else is waiting; raises its refusal as ApiError."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Placed] = loop.create_future()
        self._start()
        self._queue.put((item, loop, future))
        return await future

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="signoff-placer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            waiting = [self._queue.get()]
            while len(waiting) < MAX_BATCH:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            outcomes: list[Placed | BaseException]
            try:
                outcomes = list(place_batch([item for item, _, _ in waiting]))
            except BaseException as exc:
                log.exception("placement batch failed", size=len(waiting))
                outcomes = [exc] * len(waiting)
            for (_, loop, future), outcome in zip(waiting, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: "asyncio.Future[Placed]", outcome: Placed | BaseException) -> None:
    if future.done():  # the client went away; its proposal stands (its key replays it)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


placer = Placer()

__all__ = ["MAX_BATCH", "Placed", "Placement", "placer"]
