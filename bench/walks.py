"""Which backend modules one request runs through: placing a proposal, and deciding one.

    .venv/bin/python bench/walks.py [--db sqlite|postgres] [--show]

A structural figure, not a speed: a profiler hook in every thread records each call into
a Python function under ``backend/``, for one ``POST /v1/proposals`` (through the route,
the group-commit writer, placement and the commit steps that write its audit events) and
one decision (the review route's function, through to its audit event). It prints how many
modules each walk enters and how many times it steps from one module into another; the
same request is traced after a warm-up, so first-use imports do not count.
"""

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, bench_database, make_agent, refund_proposal

BACKEND = str(ROOT / "backend") + "/"


class Trace:
    def __init__(self) -> None:
        self.on = False
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def hook(self, frame: Any, event: str, _arg: Any) -> None:
        if not self.on or event != "call":
            return
        path = frame.f_code.co_filename
        if path.startswith(BACKEND) and "/migrations/" not in path:
            with self._lock:
                self.calls.append(str(Path(path).relative_to(ROOT)))

    def run(self, work: Callable[[], Any]) -> list[str]:
        self.calls = []
        self.on = True
        try:
            work()
        finally:
            self.on = False
        # Consecutive calls inside one module are one stay.
        return [m for i, m in enumerate(self.calls) if i == 0 or self.calls[i - 1] != m]


def report(name: str, stays: list[str], show: bool) -> None:
    print(f"{name}: {len(set(stays))} modules entered, {len(stays)} stays (steps into a module)")
    if show:
        for module in dict.fromkeys(stays):
            print(f"    {stays.count(module):3d}  {module}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--show", action="store_true", help="list the modules and the stays in each")
    args = parser.parse_args()

    trace = Trace()
    threading.setprofile(trace.hook)
    sys.setprofile(trace.hook)
    from fastapi.testclient import TestClient

    from backend.api import review
    from backend.app import create_app
    from backend.auth.oidc import User
    from models.proposals import DecisionCreate

    lead = User("lead", "lead@example.com", "Lee Lead", ("reviewer", "support_refunds"))
    with bench_database(args.db), TestClient(create_app()) as client:
        agent = make_agent()

        def place() -> str:
            response = client.post("/v1/proposals", json=refund_proposal(250), headers=agent.headers)
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        warm = place()
        review.decide(warm, DecisionCreate(verdict="approve"), lead)
        placed: list[str] = []
        report("POST /v1/proposals", trace.run(lambda: placed.append(place())), args.show)
        body = DecisionCreate(verdict="approve")
        report(
            "POST /v1/proposals/{id}/decisions",
            trace.run(lambda: review.decide(placed[0], body, lead)),
            args.show,
        )
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
