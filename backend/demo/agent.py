"""A simulated support agent: posts refund proposals and carries out the approved ones.

It uses the Python SDK (`signoff.Client`) with its API key, as a real agent would: the
demo shows the integration a newcomer will write, not hand-rolled HTTP.
"""

import logging
import random
import threading
import uuid
from typing import Any

import signoff
from backend.demo import cases
from signoff.errors import APIError, SignoffError

log = logging.getLogger("signoff.demo.agent")


class SimulatedAgent:
    def __init__(self, api_url: str, key: str, interval: float = 45.0, seed: int = 7) -> None:
        # Few retries: a demo that is being stopped should not sit in backoff.
        self.client = signoff.Client(api_url, key, timeout=30, max_retries=2)
        self.interval = interval
        self.rng = random.Random(seed)
        self.waiting: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-agent", daemon=True)

    def propose(self, body: dict[str, Any], expires_in: int | None = None) -> signoff.ProposalHandle | None:
        try:
            handle = self.client.propose(
                body["action_type"],
                body["payload"],
                summary=body["summary"],
                evidence=body["evidence"],
                context=body["context"],
                expires_in_seconds=expires_in,
                idempotency_key=uuid.uuid4().hex,
            )
        except APIError as exc:
            # Suspended or kill switch engaged: an agent would back off; so do we.
            log.info("proposal refused: %s", exc)
            return None
        if handle.status == "pending":
            self.waiting.append(handle.id)
        return handle

    def seed_queue(self) -> int:
        batch = cases.opening_batch(self.rng)
        # The first few are due within the hour, so the queue shows what "urgent" looks like.
        placed = [self.propose(body, 2400 + 600 * n if n < 3 else None) for n, body in enumerate(batch)]
        return sum(1 for p in placed if p)

    def carry_out_approved(self) -> None:
        for pid in list(self.waiting):
            try:
                status = self.client.get(pid).status
                if status == "approved":
                    self.client.report(pid, "succeeded", {"refund_id": f"re_{uuid.uuid4().hex[:10]}"})
            except APIError as exc:
                log.info("agent call failed: %s", exc)
                continue
            if status != "pending":
                self.waiting.remove(pid)

    def _run(self) -> None:
        since_last = 0.0
        while not self.stopped.wait(3.0):
            since_last += 3.0
            try:
                self.carry_out_approved()
                if since_last >= self.interval:
                    since_last = 0.0
                    hostile = self.rng.choice([None] * 8 + ["prompt_injection", "beacon"])
                    self.propose(cases.refund(self.rng, hostile))
            except SignoffError as exc:
                log.info("agent call failed: %s", exc)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.client.close()
