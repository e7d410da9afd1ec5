"""Proposals created per second over HTTP, against a bare FastAPI endpoint inserting the same row.

    .venv/bin/python bench/ingest.py [--db sqlite postgres] [--clients 32] [--seconds 10] [--workers 2]

The load comes from wrk (C, `apt-get install wrk`) so the load generator does not eat the
Python servers' CPU. Each request carries a fresh Idempotency-Key, as the SDK sends.
Prints one line per database and the ratio Signoff / bare (target: >= 1,000/s and >= 0.5).
"""

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import bench_database, machine, make_agent, refund_proposal, uvicorn

LUA = """
local counter = 0
local tid = 0
function setup(thread) tid = tid + 1; thread:set("tid", tid) end
local keys = KEYS
function request()
  counter = counter + 1
  wrk.headers["Authorization"] = "Bearer " .. keys[(counter % #keys) + 1]
  wrk.headers["Idempotency-Key"] = "bench-" .. tostring(tid) .. "-" .. tostring(counter) .. "-" .. RUN
  return wrk.format("POST", PATH, nil, BODY)
end
"""


def run_wrk(
    url: str, path: str, body: dict, keys: list[str], clients: int, seconds: int
) -> tuple[float, int, str]:
    lua_keys = "{" + ", ".join(json.dumps(k) for k in keys) + "}"
    script = (
        LUA.replace("RUN", json.dumps(str(id(body))))
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
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(f.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return rate, int(bad.group(1)) if bad else 0, p99.group(1) if p99 else "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--agents", type=int, default=1, help="spread the load over this many agents")
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
            with uvicorn("bench.bare_app:app", env, workers=args.workers) as url:
                run_wrk(url, "/bare/proposals", body, keys, args.clients, 2)  # warm-up
                bare, bare_bad, bare_p99 = run_wrk(
                    url, "/bare/proposals", body, keys, args.clients, args.seconds
                )
            with uvicorn("backend.app:create_app", env, workers=args.workers, factory=True) as url:
                run_wrk(url, "/v1/proposals", body, keys, args.clients, 2)
                ours, ours_bad, ours_p99 = run_wrk(
                    url, "/v1/proposals", body, keys, args.clients, args.seconds
                )
            print(
                f"{kind:9s} signoff {ours:8.0f}/s (p99 {ours_p99}, non-2xx {ours_bad})   "
                f"bare {bare:8.0f}/s (p99 {bare_p99}, non-2xx {bare_bad})   ratio {ours / bare:.2f}"
            )


if __name__ == "__main__":
    main()
