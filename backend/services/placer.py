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
from typing import Any

import structlog

from backend.services.batch import Placed, Placement
from backend.services.placement import place_batch

log = structlog.get_logger()

MAX_BATCH = 64
# One writer per process: a second one only adds lock contention (bench/ingest.py on
# PostgreSQL fell from about 470/s to 390/s with two and 260/s with three; measured before
# the benchmark's idempotency keys were fixed, so the figures include replays).
WRITERS = 1

_Waiter = tuple[Placement, asyncio.AbstractEventLoop, "asyncio.Future[Placed]"]


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
        self._queue.put((item, loop, future))
        return await future

    def _start(self) -> None:
        if len(self._threads) == WRITERS:
            return
        with self._lock:
            while len(self._threads) < WRITERS:
                thread = threading.Thread(target=self._run, name="signoff-placer", daemon=True)
                thread.start()
                self._threads.append(thread)

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
            # One wake-up per event loop, not one per proposal: each is a write to the loop's pipe.
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Placed], Any]]] = {}
            for (_, loop, future), outcome in zip(waiting, outcomes, strict=True):
                answers.setdefault(loop, []).append((future, outcome))
            for loop, settled in answers.items():
                loop.call_soon_threadsafe(_settle, settled)


def _settle(answers: list[tuple["asyncio.Future[Placed]", Placed | BaseException]]) -> None:
    for future, outcome in answers:
        if future.done():  # the client went away; its proposal stands (its key replays it)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


placer = Placer()

__all__ = ["MAX_BATCH", "Placed", "Placement", "placer"]
