"""`signoff policy validate|apply`, run as an operator would."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.databases import Database
from tests.support.factories import default_policy_text
from tests.support.servers import ROOT


def signoff(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNOFF_DATABASE_URL": db_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_and_apply(fresh_database: Database, tmp_path: Path) -> None:
    good = tmp_path / "limit200.cedar"
    good.write_text(default_policy_text().replace('decimal("100.00")', 'decimal("200.00")'))
    bad = tmp_path / "bad.cedar"
    bad.write_text("// a comment\npermit (principal, action, resource)\nwhen { context.x < };\n")

    ok = signoff(fresh_database.url, "policy", "validate", str(good), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["policy_ids"][1] == "agents-execute-refunds-up-to-100-usd"

    refused = signoff(fresh_database.url, "policy", "validate", str(bad))
    assert refused.returncode == 1
    assert f"{bad}:3:" in refused.stderr.replace("\n", "") and "unexpected token" in refused.stderr

    assert signoff(fresh_database.url, "policy", "apply", str(bad)).returncode == 1
    typo = tmp_path / "typo.cedar"
    typo.write_text('permit (principal, action == Action::"aprove", resource);\n')
    refused = signoff(fresh_database.url, "policy", "validate", str(typo))
    assert refused.returncode == 1 and f"{typo}:1:30:" in refused.stderr.replace("\n", "")
    unknown_type = tmp_path / "unknown_type.cedar"
    unknown_type.write_text('\npermit (principal, action, resource == ActionType::"wire_money");\n')
    assert signoff(fresh_database.url, "policy", "validate", str(unknown_type)).returncode == 0  # no database
    refused = signoff(fresh_database.url, "policy", "apply", str(unknown_type))
    assert refused.returncode == 1 and f"{unknown_type}:2:40:" in refused.stderr.replace("\n", "")
    applied = signoff(fresh_database.url, "policy", "apply", str(good), "--comment", "raise limit", "--json")
    assert applied.returncode == 0, applied.stderr
    view = json.loads(applied.stdout)
    assert view["version"] == 2 and view["comment"] == "raise limit" and view["created_by"] == "system:cli"
