"""The operator's bootstrap path: migrate, create an agent and a key, serve."""

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.factories import refund_proposal
from tests.support.servers import ApiServer, OidcProvider, free_port


def signoff(db_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        env={"SIGNOFF_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bootstrap_from_an_empty_database(tmp_path: Path, oidc: OidcProvider) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    refused = signoff(url, "agents", "list")
    assert refused.returncode != 0 and "signoff migrate" in refused.stderr
    serve = signoff(url, "serve", "--port", str(free_port()), timeout=30)
    assert serve.returncode != 0 and "signoff migrate" in serve.stderr and "Traceback" not in serve.stderr

    assert signoff(url, "migrate").returncode == 0
    created = signoff(
        url, "agents", "create", "refund-bot", "--grant", "refund", "--dial", "refund=approve", "--json"
    )
    assert created.returncode == 0, created.stderr
    agent = json.loads(created.stdout)
    assert agent["name"] == "refund-bot" and agent["grants"] == [{"action_type": "refund", "dial": "approve"}]

    key = json.loads(signoff(url, "keys", "create", "refund-bot", "--json").stdout)
    assert key["key"].startswith("so_") and key["agent_id"] == agent["id"]
    listed = signoff(url, "keys", "list", "refund-bot", "--json")
    assert key["key"] not in listed.stdout and json.loads(listed.stdout)[0]["id"] == key["id"]

    server = ApiServer(server_env(Database("sqlite", url), oidc.issuer))
    try:
        r = httpx.post(
            f"{server.url}/v1/proposals",
            json=refund_proposal(),
            headers={"Authorization": f"Bearer {key['key']}"},
        )
        assert r.status_code == 201, r.text
        assert signoff(url, "keys", "revoke", "refund-bot", key["id"]).returncode == 0
        r = httpx.post(
            f"{server.url}/v1/proposals",
            json=refund_proposal(),
            headers={"Authorization": f"Bearer {key['key']}"},
        )
        assert r.status_code == 401
    finally:
        server.close()
    verify = signoff(url, "audit", "verify", "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True


def test_cli_errors_are_one_line_and_non_zero(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    signoff(url, "migrate")
    assert signoff(url, "agents", "create", "bot").returncode == 0
    dup = signoff(url, "agents", "create", "bot")
    assert dup.returncode == 2 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    bad_dial = signoff(url, "agents", "create", "bot2", "--dial", "refund=yolo")
    assert bad_dial.returncode != 0 and "observe, draft, approve, execute" in bad_dial.stderr
    unknown = signoff(url, "keys", "create", "ghost")
    assert unknown.returncode == 2 and "ghost" in unknown.stderr
    bad_grant = signoff(url, "agents", "create", "bot3", "--grant", "nothing")
    assert bad_grant.returncode == 2 and "nothing" in bad_grant.stderr
