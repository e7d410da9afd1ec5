"""Real processes for tests: the OIDC provider and the API server."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from backend.demo.stack import stop, wait_http

ROOT = Path(__file__).resolve().parents[2]  # the repository: tests/support/servers.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OidcProvider:
    """`oidc-provider-mock` in its own process: the real protocol, real signatures."""

    def __init__(self, port: int, token_max_age: int | None = None) -> None:
        self.port = port
        self.issuer = f"http://localhost:{port}"
        args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)]
        if token_max_age is not None:
            args += ["--token-max-age", str(token_max_age)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"{self.issuer}/.well-known/openid-configuration", self.proc)
        self._tokens: dict[tuple[Any, ...], str] = {}

    def id_token(
        self,
        sub: str,
        groups: list[str],
        client_id: str = "signoff-test",
        email: str | None = None,
        name: str | None = None,
        fresh: bool = False,
    ) -> str:
        """Log `sub` in through the authorization-code flow and return the ID token."""
        cache_key = (sub, tuple(groups), client_id)
        if not fresh and cache_key in self._tokens:
            return self._tokens[cache_key]
        claims = {"email": email or f"{sub}@example.com", "name": name or sub.title(), "groups": groups}
        with httpx.Client(base_url=self.issuer, timeout=10) as c:
            c.put(f"/users/{sub}", json=claims).raise_for_status()
            redirect = "http://localhost/callback"
            params = {
                "client_id": client_id,
                "redirect_uri": redirect,
                "response_type": "code",
                "scope": "openid email profile",
                "state": "s",
                "nonce": "n",
            }
            r = c.post("/oauth2/authorize", params=params, data={"sub": sub})
            assert r.status_code in (302, 303), r.text
            code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
            t = c.post(
                "/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect,
                    "client_id": client_id,
                    "client_secret": "secret",
                },
            )
            t.raise_for_status()
            token = t.json()["id_token"]
        self._tokens[cache_key] = token
        return token

    def close(self) -> None:
        stop(self.proc)


class ApiServer:
    """`uvicorn backend.app:create_app` in its own process."""

    def __init__(self, env: dict[str, str], port: int | None = None, workers: int = 1) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.DEVNULL,
            # Not a pipe: nobody reads it while the server runs, and a full pipe (an outage
            # logs a line per failed batch) would block the server's logging, then the server.
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"{self.url}/healthz", self.proc)
        except Exception:
            stop(self.proc)
            raise

    def kill(self) -> None:
        stop(self.proc, signal.SIGKILL)

    def close(self) -> None:
        stop(self.proc)


@contextlib.contextmanager
def api_server(env: dict[str, str], **kwargs: Any) -> Iterator[ApiServer]:
    server = ApiServer(env, **kwargs)
    try:
        yield server
    finally:
        server.close()
