"""The placer's batching: what it takes into one batch, and when it waits for more."""

import asyncio
import threading
import time

import pytest

from backend.proposals import placer as placer_module
from backend.proposals.batch import Placed, Placement
from backend.proposals.placer import MAX_BATCH, Placer, _Waiter
from models.proposals import ProposalCreate
from tests.support.factories import refund_proposal


def _waiter(n: int, loop: asyncio.AbstractEventLoop) -> _Waiter:
    body = ProposalCreate.model_validate(refund_proposal())
    return (Placement(f"agent-{n}", body, f"hash-{n}"), loop, loop.create_future(), None)


def _names(batch: list[_Waiter]) -> list[str]:
    return [item.agent_id for item, _, _, _ in batch]


def test_without_linger_it_takes_what_is_waiting_and_no_more() -> None:
    loop = asyncio.new_event_loop()
    placer = Placer()
    for n in range(3):
        placer._queue.put(_waiter(n, loop))
    assert _names(placer._collect(0.0)) == ["agent-0", "agent-1", "agent-2"]
    assert placer._queue.empty()
    loop.close()


def test_a_batch_never_exceeds_the_maximum_and_the_rest_waits_in_order() -> None:
    loop = asyncio.new_event_loop()
    placer = Placer()
    for n in range(MAX_BATCH + 5):
        placer._queue.put(_waiter(n, loop))
    # A long linger is not waited for once the batch is full.
    first = placer._collect(60.0)
    assert _names(first) == [f"agent-{n}" for n in range(MAX_BATCH)]
    assert _names(placer._collect(0.0)) == [f"agent-{n}" for n in range(MAX_BATCH, MAX_BATCH + 5)]
    loop.close()


def test_lingering_gathers_proposals_that_arrive_while_it_waits() -> None:
    loop = asyncio.new_event_loop()
    placer = Placer()
    placer._queue.put(_waiter(0, loop))

    def arrive_one_by_one() -> None:
        for n in range(1, 6):
            time.sleep(0.002)  # well inside the quiet spell (a quarter of the linger: 250 ms)
            placer._queue.put(_waiter(n, loop))

    feeder = threading.Thread(target=arrive_one_by_one)
    feeder.start()
    batch = placer._collect(1.0)
    feeder.join()
    assert _names(batch) == [f"agent-{n}" for n in range(6)]
    loop.close()


def test_a_failing_trace_annotation_still_answers_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("exporter gone")

    monkeypatch.setattr(placer_module.tracing, "placed", broken)
    loop = asyncio.new_event_loop()
    futures = [loop.create_future() for _ in range(3)]
    answers = [(futures[0], Placed(201, {"id": "a"}), None), (futures[1], ValueError("no"), None)]
    answers.append((futures[2], Placed(200, {"id": "c"}), None))
    placer_module._settle(answers, None)
    assert futures[0].result().body == {"id": "a"}
    assert isinstance(futures[1].exception(), ValueError)
    assert futures[2].result().status == 200
    loop.close()
