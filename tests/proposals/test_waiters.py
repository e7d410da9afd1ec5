"""Two thousand long-polling agents on one API process hold no database connections: each
gets its own answer, the pool never grows past its size, and a reviewer is served meanwhile."""

import httpx

from tests.support.databases import Database
from tests.support.inproc import serve
from tests.support.servers import OidcProvider
from tests.support.waiters import Crowd, CrowdProcess, all_waiting, wait_until

WAITERS = 2000


def test_two_thousand_waiters_each_get_their_answer(
    db: Database, oidc: OidcProvider, lead: dict[str, str]
) -> None:
    crowd = Crowd.make(WAITERS)
    with serve(oidc.issuer) as api:
        agents = CrowdProcess(api.url, crowd)
        try:
            # Everyone waits, and holds no connection while waiting.
            wait_until(lambda: all_waiting(WAITERS)() and api.pool.in_use == 0)
            queue = httpx.get(f"{api.url}/v1/queue", params={"limit": 50}, headers=lead, timeout=60)
            assert queue.status_code == 200 and len(queue.json()["items"]) == 50
            crowd.decide_all()
            answers = agents.answers()
        finally:
            agents.close()
    assert len(answers) == WAITERS
    for index, pid in enumerate(crowd.ids):
        answer = answers[pid]
        expected = "approved" if crowd.verdict(index) == "approve" else "rejected"
        assert answer["proposal_id"] == pid and answer["decided"] is True
        assert answer["status"] == expected and answer["decision"]["verdict"] == crowd.verdict(index)
    assert api.pool.peak <= api.pool.size
