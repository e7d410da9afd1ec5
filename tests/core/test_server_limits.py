"""The server as ``signoff serve`` runs it: oversized heads refused, slow clients cut off."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from backend.demo.stack import stop, wait_http
from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.servers import ROOT, OidcProvider, free_port


@pytest.fixture
def served(database: Database, oidc: OidcProvider) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **server_env(database, oidc.issuer, SIGNOFF_REQUEST_READ_TIMEOUT_SECONDS="1")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc)
        yield url
    finally:
        stop(proc)


def test_a_one_mebibyte_header_is_refused(served: str) -> None:
    try:
        r = httpx.get(f"{served}/healthz", headers={"X-Big": "a" * (1024 * 1024)}, timeout=30)
    except httpx.HTTPError:
        return  # cut off before an answer: refused too
    assert r.status_code == 400
    assert httpx.get(f"{served}/healthz", timeout=30).status_code == 200


def test_a_slow_client_is_cut_off(served: str) -> None:
    """A client trickling one header byte at a time never finishes its request: the server
    closes the connection instead of holding it forever."""
    host, port = served.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        closed = False
        for _ in range(600):  # up to a minute of trickling
            try:
                sock.sendall(b"a")
                sock.settimeout(0.1)
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            time.sleep(0.0)
        assert closed, "the server kept a trickling client's connection open"
    assert httpx.get(f"{served}/healthz", timeout=30).status_code == 200
