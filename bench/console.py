"""Console speed with 100,000 pending proposals, measured in headless Chromium.

Prints: time to the first queue page (navigation to the table being drawn) and time from
clicking Approve to the next item being shown. Targets: < 1 s and < 300 ms.

Then where that time goes, per page load or decision: the API calls the console made and the
API's own time for them (from its /metrics histogram, so loopback and the console's waiting
are not in it), and the CPU used by the API, the console (Streamlit) and the browser
(Chromium and Playwright's driver). On a loaded machine the rest is waiting for a core.

The waits check the page on every animation frame: Playwright's locator waits back off to one
check every 500 ms, which would add up to half a second to a figure.

    .venv/bin/python bench/console.py [--pending 100000] [--db sqlite|postgres] [--rounds 10]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

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
    if engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of a bulk load on a live database. Measured
        # straight after the insert, PostgreSQL has no statistics yet (it plans 21 rows, not
        # 100,000: a bitmap scan and sort, 100 ms a queue page) and no visibility map (the
        # counts read the heap).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE proposals")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_time(api_url: str) -> dict[str, tuple[float, float]]:
    """(calls, seconds) per API route so far, from the API's request-latency histogram."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for line in httpx.get(f"{api_url}/metrics", timeout=10).text.splitlines():
        for suffix, slot in (("_count", 0), ("_sum", 1)):
            head = f"signoff_http_request_seconds{suffix}{{"
            if line.startswith(head):
                labels, value = line[len(head) :].rsplit("} ", 1)
                parts = dict(kv.split("=", 1) for kv in labels.split(","))
                out[f"{parts['method'].strip(chr(34))} {parts['route'].strip(chr(34))}"][slot] += float(value)
    return {k: (v[0], v[1]) for k, v in out.items()}


def browser_cpu_seconds(exclude: set[int]) -> float:
    """CPU of this process's other descendants (Playwright's driver and Chromium)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children[ppid].append(int(stat.parent.name))
    total, todo = 0.0, [p for p in children[os.getpid()] if p not in exclude]
    while todo:
        pid = todo.pop()
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
        todo += children[pid]
    return total


class Breakdown:
    """API calls, API time and process CPU over one measured phase, per operation."""

    def __init__(self, api_url: str, api_pid: int, console_pid: int, idp_pid: int) -> None:
        self.api_url, self.pids = api_url, {"api": api_pid, "console": console_pid}
        self.servers = {api_pid, console_pid, idp_pid}

    def __enter__(self) -> "Breakdown":
        self.calls0 = api_time(self.api_url)
        self.cpu0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.browser0 = browser_cpu_seconds(self.servers)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = {k: cpu_seconds(p) - self.cpu0[k] for k, p in self.pids.items()}
        self.cpu["browser"] = browser_cpu_seconds(self.servers) - self.browser0
        calls = api_time(self.api_url)
        self.routes = {
            k: (n - self.calls0.get(k, (0, 0))[0], t - self.calls0.get(k, (0, 0))[1])
            for k, (n, t) in calls.items()
            # The scrapes themselves are "unmatched" (a plain route): not the console's calls.
            if k not in ("GET /metrics", "GET unmatched") and n > self.calls0.get(k, (0, 0))[0]
        }

    def report(self, what: str, ops: int) -> None:
        total = sum(t for _, t in self.routes.values()) / ops * 1000
        calls = sum(n for n, _ in self.routes.values()) / ops
        api_cpu, console_cpu, browser_cpu = (self.cpu[k] / ops * 1000 for k in ("api", "console", "browser"))
        print(
            f"  per {what}: API time {total:.0f} ms in {calls:.1f} calls;"
            f" CPU: API {api_cpu:.0f} ms, console {console_cpu:.0f} ms, browser {browser_cpu:.0f} ms"
        )
        for route, (n, t) in sorted(self.routes.items(), key=lambda kv: -kv[1][1]):
            print(f"    {route}: {n / ops:.1f} calls, {t / n * 1000:.1f} ms each")


# The queue is drawn when a row's button and the "Pending" figure are both on screen. Checked on
# every animation frame: Playwright's own locator waits poll at 0, 20, 50, 100, 100, then every
# 500 ms, which added up to half a second to what this measured before.
QUEUE_DRAWN = """() => {
    const row = document.querySelector("[class*='st-key-open_'] button");
    const pending = [...document.querySelectorAll("p")].find(p => p.innerText === "Pending");
    return row && pending && row.checkVisibility() && pending.checkVisibility();
}"""


def queue_drawn(page: Any) -> None:
    page.wait_for_function(QUEUE_DRAWN, polling="raf")


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
            api_pid, console_pid = procs[1].pid, procs[2].pid
            queue_times = []
            with Breakdown(api_url, api_pid, console_pid, procs[0].pid) as queue_cost:
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    page.goto(f"{console}/queue")
                    queue_drawn(page)
                    queue_times.append(time.perf_counter() - t)
            nav_times = []
            for _ in range(args.rounds):
                page.goto(f"{console}/audit")
                page.get_by_text("Chain verified").wait_for()
                t = time.perf_counter()
                page.get_by_role("link", name="Queue").click()
                queue_drawn(page)
                nav_times.append(time.perf_counter() - t)
            page.goto(f"{console}/review")
            approve = page.locator(".st-key-approve").get_by_role("button")
            approve.wait_for()
            decide_times = []
            # Let the page settle (its first render's calls are not a decision's).
            page.wait_for_timeout(1000)
            with Breakdown(api_url, api_pid, console_pid, procs[0].pid) as decide_cost:
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

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"first queue page in the browser ({args.rounds} loads): {fmt(queue_times)}  [target < 1000 ms]")
    queue_cost.report("queue page load", args.rounds)
    print(f"queue page from the sidebar, app already open ({args.rounds} clicks): {fmt(nav_times)}")
    print(f"approve -> next item shown ({args.rounds} decisions): {fmt(decide_times)}  [target < 300 ms]")
    decide_cost.report("decision", args.rounds)


if __name__ == "__main__":
    main()
