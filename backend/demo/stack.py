"""Start and stop the pieces of a local Signoff: identity provider, API, console, agent.

Used by `signoff demo`, by the browser tests and by `bench/console.py`, so all three run the
product the same way (real processes, real OIDC).
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
# The console server: it runs the pages of ui/app.py (ui/serve.py says why it wraps them).
APP = ROOT / "ui" / "serve.py"
CLIENT_ID = "signoff-console"

# The demo's people, first one first on the provider's login page.
USERS: list[dict[str, Any]] = [
    {
        "sub": "lee-support-lead",
        "name": "Lee Lead",
        "email": "lee@example.com",
        "groups": ["reviewer", "support_refunds"],
    },
    {"sub": "rita-reviewer", "name": "Rita Reviewer", "email": "rita@example.com", "groups": ["reviewer"]},
    {"sub": "ada-admin", "name": "Ada Admin", "email": "ada@example.com", "groups": ["admin"]},
]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_http(url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up within {timeout:.0f} s")


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def idp_command(port: int, users: Sequence[dict[str, Any]] = USERS) -> list[str]:
    args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)]
    for user in users:
        args += ["--user-claims", json.dumps(user)]
    return args


def secrets_toml(
    ui_port: int,
    idp_url: str,
    api_url: str,
    client_id: str = CLIENT_ID,
    client_secret: str | None = None,
    prompt: str = "select_account",
    scope: str = "openid email profile",
) -> str:
    """The console's `.streamlit/secrets.toml`: OIDC login and where the API is.

    `[auth.client_kwargs]` is what the console adds to the authorization request: some
    providers refuse Streamlit's default ``prompt=select_account`` (use ``login``), and some
    send groups only for an extra scope (docs/identity.md). The access token is exposed so the
    console can send it for groups read from /userinfo."""
    return (
        "[auth]\n"
        f'redirect_uri = "http://localhost:{ui_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        f"client_id = {_toml(client_id)}\n"
        f"client_secret = {_toml(client_secret or secrets.token_urlsafe(16))}\n"
        f"server_metadata_url = {_toml(idp_url.rstrip('/') + '/.well-known/openid-configuration')}\n"
        'expose_tokens = ["id", "access"]\n\n'
        "[auth.client_kwargs]\n"
        f"prompt = {_toml(prompt)}\n"
        f"scope = {_toml(scope)}\n\n"
        "[signoff]\n"
        f"api_url = {_toml(api_url)}\n"
    )


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string (quotes and backslashes escaped).
    return json.dumps(value)


def write_secrets(workdir: Path, content: str) -> Path:
    path = workdir / ".streamlit" / "secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(0o600)
    return path


def console_command(port: int, error_details: str = "none") -> list[str]:
    """The console's server. ``error_details`` is Streamlit's ``client.showErrorDetails``:
    ``none`` for people (an unexpected error shows Streamlit's redacted notice, never a stack
    trace); the browser tests ask for ``full``, so a traceback fails them visibly."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        "localhost",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
        "--client.showErrorDetails",
        error_details,
    ]


def cli_serve(port: int) -> list[str]:
    return [sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]


def api_env(database_url: str, idp_url: str, client_id: str = CLIENT_ID) -> dict[str, str]:
    return {
        **os.environ,
        "SIGNOFF_DATABASE_URL": database_url,
        "SIGNOFF_OIDC_ISSUER": idp_url,
        "SIGNOFF_OIDC_CLIENT_ID": client_id,
        "SIGNOFF_LOG_LEVEL": "WARNING",
    }


def cli(env: dict[str, str], *args: str) -> Any:
    """Run `signoff ARGS --json` against the configured database; the parsed output."""
    out = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"signoff {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout) if "--json" in args else None


def start(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, log: Path | None = None
) -> subprocess.Popen[Any]:
    """A child process whose standard error goes to ``log`` (appended), or nowhere. Never a
    pipe: nobody reads it while the demo runs, and a full pipe would stall the child."""
    if log is None:
        return subprocess.Popen(
            args, env=env, cwd=cwd or ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    with log.open("ab") as stream:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, env=env, cwd=cwd or ROOT, stdout=subprocess.DEVNULL, stderr=stream)
