"""A simulated support agent: posts refund proposals and carries out the approved ones.

It talks plain HTTP with its API key, as any agent would (the SDK can replace httpx here).
"""

import logging
import random
import threading
import uuid
from typing import Any

import httpx

from backend.demo import cases

log = logging.getLogger("signoff.demo.agent")


class SimulatedAgent:
    def __init__(self, api_url: str, key: str, interval: float = 45.0, seed: int = 7) -> None:
        self.http = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.interval = interval
        self.rng = random.Random(seed)
        self.waiting: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-agent", daemon=True)

    def propose(self, body: dict[str, Any], expires_in: int | None = None) -> dict[str, Any] | None:
        if expires_in:
            body = {**body, "expires_in_seconds": expires_in}
        r = self.http.post("/v1/proposals", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        if r.status_code != 201:
            # Suspended or kill switch engaged: an agent would back off; so do we.
            log.info("proposal refused: %s", r.text[:200])
            return None
        created: dict[str, Any] = r.json()
        if created["status"] == "pending":
            self.waiting.append(created["id"])
        return created

    def seed_queue(self) -> int:
        batch = cases.opening_batch(self.rng)
        # The first few are due within the hour, so the queue shows what "urgent" looks like.
        placed = [self.propose(body, 2400 + 600 * n if n < 3 else None) for n, body in enumerate(batch)]
        return sum(1 for p in placed if p)

    def carry_out_approved(self) -> None:
        for pid in list(self.waiting):
            r = self.http.get(f"/v1/proposals/{pid}")
            if r.status_code != 200:
                continue
            status = r.json()["status"]
            if status == "approved":
                self.http.post(
                    f"/v1/proposals/{pid}/execution",
                    json={"status": "succeeded", "result": {"refund_id": f"re_{uuid.uuid4().hex[:10]}"}},
                )
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
            except httpx.HTTPError as exc:
                log.info("agent call failed: %s", exc)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.http.close()
