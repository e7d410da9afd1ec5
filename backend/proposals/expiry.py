"""The sweeper that expires pending proposals past their deadline."""

import threading

import structlog
from sqlalchemy import select

from backend.core.db import transaction
from backend.proposals import idempotency, transitions
from models.common import utcnow
from models.proposals import Proposal, Status

log = structlog.get_logger()
BATCH = 500


def sweep_once() -> int:
    """Expire one batch of overdue proposals; returns how many."""
    with transaction() as session:
        now = utcnow()
        overdue = session.execute(
            select(Proposal.id, Proposal.expires_at)
            .where(Proposal.status == Status.pending.value, Proposal.expires_at <= now)
            .order_by(Proposal.expires_at)
            .limit(BATCH)
        ).all()
        count = 0
        for pid, expires_at in overdue:
            if transitions.expire(session, pid, expires_at, at=now):
                count += 1
        return count


class Sweeper(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="signoff-expiry", daemon=True)
        self.interval = interval
        self._stop = threading.Event()
        self._ticks = 0

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                while sweep_once() == BATCH:
                    pass
                self._ticks += 1
                if self._ticks % 720 == 0:
                    with transaction() as session:
                        idempotency.purge_expired(session)
            except Exception:
                log.exception("expiry_sweep_failed")

    def stop(self) -> None:
        self._stop.set()
