"""Many long-polling agents on one API process, shared by the test and ``bench/waiters.py``.

The agents run in a process of their own (``python -m tests.support.waiters URL KEY``,
proposal ids on standard input, answers as JSON lines on standard output), so that the
API process under test does not share its interpreter with thousands of clients.
"""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from backend.core.db import transaction
from backend.proposals import transitions
from backend.proposals.batch import Placement
from backend.proposals.placement import place_batch
from backend.proposals.waiting import hub
from models.audit import AuditAction
from models.proposals import Decision, ProposalCreate, Status, Verdict
from tests.support.factories import AgentCreds, make_agent, refund_proposal

CHUNK = 64


def place_many(agent: AgentCreds, count: int) -> list[str]:
    """``count`` pending proposals of ``agent``, placed in batches in process."""
    ids: list[str] = []
    for start in range(0, count, CHUNK):
        items = [
            Placement(agent.id, ProposalCreate.model_validate(refund_proposal(10 + i % 40)), f"w{i}")
            for i in range(start, min(count, start + CHUNK))
        ]
        for outcome in place_batch(items):
            assert not isinstance(outcome, Exception), outcome
            ids.append(outcome.body["id"])
    return ids


@dataclass
class Crowd:
    """``count`` agents' proposals, one waiter each; every second one is to be approved."""

    agent: AgentCreds
    ids: list[str]
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def make(cls, count: int) -> "Crowd":
        agent = make_agent()
        return cls(agent, place_many(agent, count))

    def verdict(self, index: int) -> str:
        return "approve" if index % 2 == 0 else "reject"

    async def wait_all(self, client: httpx.AsyncClient, wait: float = 60) -> None:
        async def one(pid: str) -> None:
            url = f"/v1/proposals/{pid}/decision"
            dropped = 0
            while True:  # as the SDK does: wait again while it is still pending
                try:
                    r = await client.get(url, params={"wait": wait}, headers=self.agent.headers)
                except httpx.TransportError:
                    # A kept-alive connection the server closed as we reused it (its idle
                    # timeout): the SDK retries such a GET, and so does the crowd, a few times.
                    dropped += 1
                    if dropped > 3:
                        raise
                    continue
                r.raise_for_status()
                if r.json()["decided"]:
                    self.answers[pid] = r.json()
                    return

        await asyncio.gather(*(one(pid) for pid in self.ids))

    def decide_all(self, per_transaction: int = 250) -> None:
        """Decide every proposal, many per transaction (the reviewer's rules are not what is
        tested here; the wake-ups are): each leaves ``pending`` through ``transitions``, as
        a reviewer's decision does, and its waiter is woken when the transaction commits."""
        for start in range(0, len(self.ids), per_transaction):
            with transaction() as session:
                for index in range(start, min(len(self.ids), start + per_transaction)):
                    verdict = Verdict(self.verdict(index))
                    to = Status.approved if verdict == Verdict.approve else Status.rejected
                    pid = self.ids[index]
                    data = {"verdict": verdict.value}
                    assert transitions.leave_pending(
                        session, pid, to, actor="user:crowd", action=AuditAction.PROPOSAL_DECIDED, data=data
                    )
                    session.add(Decision(proposal_id=pid, verdict=verdict.value, reviewer_sub="crowd"))


async def until(check: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


def wait_until(check: Callable[[], bool], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def all_waiting(count: int) -> Callable[[], bool]:
    """Every waiter has read its proposal once and now waits, with nothing left to do."""
    return lambda: hub.idle() >= count


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = await call()
    return response, time.perf_counter() - start


class CrowdProcess:
    """The crowd's waiters in a child process; :meth:`answers` waits for all of them."""

    def __init__(self, url: str, crowd: Crowd) -> None:
        self.crowd = crowd
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.waiters", url, crowd.agent.key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n".join(crowd.ids) + "\n")
        self.proc.stdin.close()

    def answers(self, seconds: float = 300) -> dict[str, dict[str, Any]]:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout=seconds)
        assert self.proc.returncode == 0, out[-2000:]
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.crowd.answers = {line["proposal_id"]: line for line in lines}
        return self.crowd.answers

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def _main(url: str, key: str, ids: list[str]) -> None:
    crowd = Crowd(AgentCreds("", "", key), ids)
    async with client(url, len(ids) + 10) as http:
        await crowd.wait_all(http)
    for pid in ids:
        print(json.dumps(crowd.answers[pid]))
    sys.stdout.flush()


def client(url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(120, pool=120))


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], [line.strip() for line in sys.stdin if line.strip()]))
