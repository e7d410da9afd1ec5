"""Shared set-up for benchmarks: a migrated database, an agent with a key, server processes."""

import json
import os
import platform
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import on_commit  # noqa: E402
from tests.support import databases  # noqa: E402
from tests.support.databases import Database  # noqa: E402
from tests.support.env import pointed_at  # noqa: E402
from tests.support.factories import AgentCreds, make_agent, refund_proposal  # noqa: E402
from tests.support.servers import free_port, stop, wait_http  # noqa: E402

on_commit.install()  # in-process set-up commits as the API does

__all__ = [
    "AgentCreds",
    "Database",
    "bench_database",
    "machine",
    "make_agent",
    "refund_proposal",
    "server_cpu_seconds",
    "uvicorn",
    "json",
]


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count()
    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {cores} cores ({cpu}), Python {python}"


@contextmanager
def bench_database(kind: str) -> Iterator[Database]:
    tmp = Path(tempfile.mkdtemp(prefix="signoff-bench-"))
    db = databases.create(kind, tmp)
    try:
        with pointed_at(db):
            yield db
    finally:
        databases.drop(db)


@contextmanager
def uvicorn(app: str, env: dict[str, str], workers: int = 1, factory: bool = False) -> Iterator[str]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        args.append("--factory")
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    _PIDS[url] = proc.pid
    try:
        wait_http(f"{url}/openapi.json", proc)
        yield url
    finally:
        stop(proc)


_PIDS: dict[str, int] = {}


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(url: str) -> float:
    """CPU time used so far by the server at ``url``: its process and its workers (Linux)."""
    root = _PIDS[url]
    children = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    return _cpu_seconds(root) + sum(_cpu_seconds(int(pid)) for pid in children)


def unique() -> str:
    return uuid.uuid4().hex
