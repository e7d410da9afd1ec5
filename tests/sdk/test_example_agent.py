"""The example refund agent runs against a real server and acts on a reviewer's decision."""

import os
import subprocess
import sys

from tests.support.factories import AgentCreds
from tests.support.sdk_helpers import Reviewer, proposals_of
from tests.support.servers import ROOT, ApiServer


def test_example_refund_agent(server: ApiServer, agent: AgentCreds, lead: dict[str, str]) -> None:
    reviewer = Reviewer(server.url, lead, agent, delay=0.3)
    env = {**os.environ, "SIGNOFF_URL": server.url, "SIGNOFF_API_KEY": agent.key}
    out = subprocess.run(
        [sys.executable, "examples/refund_agent.py", "--tickets", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    reviewer.finish()
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("T-1001: refunded")
    (row,) = proposals_of(agent)
    assert row.status == "executed" and row.summary == "Refund $149.0 to cus_ada for ord_5521"
    assert [e["kind"] for e in row.evidence] == ["message", "record", "note"]
