"""Console speed with 100,000 pending proposals, measured in headless Chromium.

Prints: time to the first queue page (navigation to the table being drawn) and time from
clicking Approve to the next item being shown. Targets: < 1.5 s and < 500 ms.

    .venv/bin/python bench/console.py [--pending 100000] [--db sqlite|postgres] [--rounds 10]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.demo import stack  # noqa: E402
from tests.support.browser import chromium, login  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

# An admin who also approves refunds: reaches the audit page and can decide.
LEAD = {**stack.USERS[0], "groups": ["reviewer", "support_refunds", "admin"]}


def seed(database_url: str, pending: int) -> None:
    """Insert the backlog straight into the database: the bench measures reading, not writing."""
    os.environ["SIGNOFF_DATABASE_URL"] = database_url
    from sqlalchemy import insert

    from backend.core.db import get_engine
    from models.common import new_id, utcnow
    from models.proposals import Proposal

    env = stack.api_env(database_url, "http://localhost:1")
    stack.cli(env, "migrate")
    agent = stack.cli(env, "agents", "create", "bench-bot", "--grant", "refund", "--json")
    now = utcnow()
    rows = []
    for n in range(pending):
        amount = 5 + n % 300
        rows.append(
            {
                "id": new_id(),
                "agent_id": agent["id"],
                "action_type": "refund",
                "action_type_version": 1,
                "summary": f"Refund {amount}.00 USD for order ord_{n:06d}",
                "payload": {
                    "customer_id": f"cus_{n % 5000}",
                    "order_id": f"ord_{n:06d}",
                    "amount_usd": amount,
                    "currency": "USD",
                    "reason": "damaged",
                },
                "evidence": [
                    {"kind": "message", "title": "Customer email", "content": f"Order {n} arrived broken."}
                ],
                "context": {"model": "gpt-4.1", "tokens": 1000},
                "status": "pending",
                "mode": "approve",
                "dial": "approve",
                "policy_outcome": "propose",
                "policy_ids": [],
                "flags": [],
                "created_at": now,
                "updated_at": now,
                # Spread deadlines over a day, like a real backlog.
                "expires_at": now + timedelta(hours=2, seconds=n),
            }
        )
    engine = get_engine()
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Proposal), rows[start : start + 5000])


def make_database(kind: str, workdir: Path) -> tuple[str, Callable[[], None]]:
    """A fresh database for this run, and how to remove it."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    import psycopg

    from tests.support.databases import PG_ADMIN

    name = f"signoff_bench_console_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="signoff-bench-console-"))
    database_url, drop = make_database(args.db, workdir)
    t = time.perf_counter()
    seed(database_url, args.pending)
    kind = database_url.split(":")[0]
    print(f"seeded {args.pending:,} pending proposals in {time.perf_counter() - t:.1f} s ({kind})")

    idp_port, api_port, ui_port = free_port(), free_port(), free_port()
    idp_url, api_url = f"http://localhost:{idp_port}", f"http://127.0.0.1:{api_port}"
    env = stack.api_env(database_url, idp_url)
    procs = [stack.start(stack.idp_command(idp_port))]
    try:
        stack.wait_http(f"{idp_url}/.well-known/openid-configuration", procs[0])
        procs.append(stack.start(stack.cli_serve(api_port), env=env))
        stack.wait_http(f"{api_url}/healthz", procs[-1])
        stack.write_secrets(workdir, stack.secrets_toml(ui_port, idp_url, api_url))
        procs.append(
            stack.start(stack.console_command(ui_port), env={**env, "SIGNOFF_API_URL": api_url}, cwd=workdir)
        )
        console = f"http://localhost:{ui_port}"
        stack.wait_http(f"{console}/_stcore/health", procs[-1])
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            login(page, console, idp_url, LEAD)
            queue_times = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                page.goto(f"{console}/queue")
                page.locator("[class*='st-key-open_'] button").first.wait_for()
                page.get_by_text("Pending", exact=True).wait_for()
                queue_times.append(time.perf_counter() - t)
            nav_times = []
            for _ in range(args.rounds):
                page.goto(f"{console}/audit")
                page.get_by_text("Chain verified").wait_for()
                t = time.perf_counter()
                page.get_by_role("link", name="Queue").click()
                page.locator("[class*='st-key-open_'] button").first.wait_for()
                page.get_by_text("Pending", exact=True).wait_for()
                nav_times.append(time.perf_counter() - t)
            page.goto(f"{console}/review")
            approve = page.locator(".st-key-approve").get_by_role("button")
            approve.wait_for()
            decide_times = []
            for _ in range(args.rounds):
                shown = page.locator(".st-key-summary").inner_text()
                t = time.perf_counter()
                approve.click()
                page.wait_for_function(
                    """prev => {
                        const s = document.querySelector(".st-key-summary");
                        return s && s.innerText !== prev && s.innerText.startsWith("Refund ")
                          && document.querySelector(".st-key-approve button:not([disabled])");
                    }""",
                    arg=shown,
                    polling="raf",
                )
                decide_times.append(time.perf_counter() - t)
    finally:
        for proc in reversed(procs):
            stack.stop(proc)
        drop()

    def fmt(xs: list[float]) -> str:
        ms = [x * 1000 for x in xs]
        return f"median {statistics.median(ms):.0f} ms, min {min(ms):.0f} ms, max {max(ms):.0f} ms"

    print(f"first queue page in the browser ({args.rounds} loads): {fmt(queue_times)}  [target < 1000 ms]")
    print(f"queue page from the sidebar, app already open ({args.rounds} clicks): {fmt(nav_times)}")
    print(f"approve -> next item shown ({args.rounds} decisions): {fmt(decide_times)}  [target < 300 ms]")


if __name__ == "__main__":
    main()
