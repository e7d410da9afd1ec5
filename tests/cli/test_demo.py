"""`signoff demo` brings the whole product up, seeds the queue, and stops cleanly on Ctrl-C.

The demo runs on the embedded default, SQLite (README.md), so this test has no PostgreSQL variant.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.demo.stack import port_free
from tests.support.servers import ROOT, free_port


def test_demo_starts_everything_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ui, api, idp = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "demo",
            "--ui-port",
            str(ui),
            "--api-port",
            str(api),
            "--idp-port",
            str(idp),
            "--agent-interval",
            "3600",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "Press Ctrl-C to stop everything." in output, output
        assert f"http://localhost:{ui}" in output and "lee-support-lead" in output
        secrets = (tmp_path / ".streamlit" / "secrets.toml").read_text()
        assert f'redirect_uri = "http://localhost:{ui}/oauth2callback"' in secrets
        assert 'expose_tokens = ["id", "access"]' in secrets and 'prompt = "select_account"' in secrets
        assert f"http://127.0.0.1:{api}" in secrets
        assert httpx.get(f"http://127.0.0.1:{api}/readyz").json()["status"] == "ok"
        assert httpx.get(f"http://localhost:{ui}/_stcore/health").status_code == 200
        login_page = httpx.get(
            f"http://localhost:{idp}/oauth2/authorize",
            params={
                "client_id": "signoff-console",
                "redirect_uri": "http://x/cb",
                "response_type": "code",
                "scope": "openid",
                "state": "s",
            },
        ).text
        # The three people are one click away, the support lead first.
        assert (
            login_page.index("lee-support-lead")
            < login_page.index("rita-reviewer")
            < login_page.index("ada-admin")
        )
        with sqlite3.connect(tmp_path / "signoff-demo.db") as db:
            rows = db.execute("SELECT evidence FROM proposals WHERE status = 'pending'").fetchall()
        assert len(rows) >= 15
        evidence = " ".join(r[0] for r in rows)
        assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in evidence and "<script>" in evidence

        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    for port in (ui, api, idp):
        assert port_free(port), f"port {port} still in use after the demo stopped"
