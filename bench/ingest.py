"""Proposals created per second over HTTP, against a bare FastAPI endpoint inserting the same row.

    .venv/bin/python bench/ingest.py [--db sqlite postgres] [--clients 32] [--seconds 10]
                                     [--workers 2] [--rounds 3] [--agents 1]

The load comes from wrk (C, `apt-get install wrk`) so the load generator does not eat the
Python servers' CPU. Each request carries a fresh Idempotency-Key, as the SDK sends.
Both servers run side by side and are loaded in turn, ``--rounds`` times: a shared 2-core
machine's speed drifts by tens of percent from minute to minute, and a ratio measured
seconds apart is steadier than one measured minutes apart. Prints every round (with the
servers' CPU time per request) and then the medians; the target is >= 1,000/s and a ratio
Signoff / bare >= 0.5.
"""

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import uuid
from pathlib import Path

from common import bench_database, machine, make_agent, refund_proposal, server_cpu_seconds, uvicorn
from sqlalchemy import Engine, text

from backend.core.db import make_engine

# Every request gets its own Idempotency-Key: RUN is fresh for each wrk run, and each wrk
# thread numbers its requests under its own prefix (``tid`` is set per thread by setup()).
LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
local keys = KEYS
function request()
  counter = counter + 1
  wrk.headers["Authorization"] = "Bearer " .. keys[(counter % #keys) + 1]
  wrk.headers["Idempotency-Key"] = "bench-" .. RUN .. "-" .. tostring(tid) .. "-" .. tostring(counter)
  return wrk.format("POST", PATH, nil, BODY)
end
"""


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM proposals")).scalar_one())


def run_wrk(
    url: str,
    path: str,
    body: dict,
    keys: list[str],
    clients: int,
    seconds: int,
    headers: dict[str, str] | None = None,
) -> tuple[float, int, str, int]:
    lua_keys = "{" + ", ".join(json.dumps(k) for k in keys) + "}"
    script = (
        LUA.replace("RUN", json.dumps(uuid.uuid4().hex))
        .replace("PATH", json.dumps(path))
        .replace("KEYS", lua_keys)
        .replace("BODY", "[==[" + json.dumps(body) + "]==]")
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            f.name,
            "-H",
            "Content-Type: application/json",
            *[arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")],
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(f.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)  # the latency table, not "71.99%"
    return rate, int(bad.group(1)) if bad else 0, p99.group(1) if p99 else "?", total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--agents", type=int, default=1, help="spread the load over this many agents")
    parser.add_argument("--rounds", type=int, default=3, help="alternate bare and Signoff this many times")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/ingest.py needs wrk: apt-get install wrk")
    print(f"machine: {machine()}")
    print(
        f"load: wrk, {args.clients} connections, {args.seconds}s per run, "
        f"{args.workers} uvicorn workers per server, load spread over {args.agents} agent(s)"
    )
    for kind in args.db:
        with bench_database(kind) as db:
            agents = [make_agent() for _ in range(args.agents)]
            keys = [a.key for a in agents]
            body = refund_proposal(42.0)
            env = {
                "SIGNOFF_DATABASE_URL": db.url,
                "SIGNOFF_LOG_LEVEL": "WARNING",
                "BENCH_AGENT_ID": agents[0].id,
            }
            with (
                uvicorn("bench.bare_app:app", env, workers=args.workers) as bare_url,
                uvicorn("backend.app:create_app", env, workers=args.workers, factory=True) as ours_url,
            ):
                targets = {"bare": (bare_url, "/bare/proposals"), "signoff": (ours_url, "/v1/proposals")}
                for url, path in targets.values():
                    run_wrk(
                        url, path, body, keys, args.clients, 5
                    )  # warm-up: pools, caches, prepared statements
                rates: dict[str, list[float]] = {"bare": [], "signoff": []}
                engine = make_engine(db.url)

                for round_ in range(1, args.rounds + 1):
                    line = []
                    for name, (url, path) in targets.items():
                        cpu = server_cpu_seconds(url)
                        before = stored(engine)
                        rate, bad, p99, total = run_wrk(url, path, body, keys, args.clients, args.seconds)
                        per_request = (server_cpu_seconds(url) - cpu) / max(rate * args.seconds, 1)
                        rates[name].append(rate)
                        # Every request must have stored a proposal: no replays, no losses.
                        line.append(
                            f"{name} {rate:6.0f}/s (p99 {p99}, non-2xx {bad}, "
                            f"{stored(engine) - before}/{total} stored, "
                            f"server CPU {per_request * 1e3:.2f} ms/request)"
                        )
                    ratio = rates["signoff"][-1] / rates["bare"][-1]
                    print(f"{kind:9s} round {round_}: " + "   ".join(line) + f"   ratio {ratio:.2f}")
            ours, bare = statistics.median(rates["signoff"]), statistics.median(rates["bare"])
            ratios = [o / b for o, b in zip(rates["signoff"], rates["bare"], strict=True)]
            print(
                f"{kind:9s} median: signoff {ours:.0f}/s   bare {bare:.0f}/s   "
                f"ratio {statistics.median(ratios):.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)})"
            )


if __name__ == "__main__":
    main()
