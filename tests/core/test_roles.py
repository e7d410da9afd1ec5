"""Least privilege on PostgreSQL: the application role runs Signoff and cannot touch the trail.

Roles are PostgreSQL's (SQLite has none), so this test runs there only; the tampering cases
on both databases are in ``tests/audit/test_tampering.py``.
"""

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.audit import checkpoints, verification
from backend.auth.oidc import User
from backend.core.db import get_engine, read_session
from backend.proposals import decisions, idempotency, placing
from models.proposals import DecisionCreate, ProposalCreate
from tests.support import databases
from tests.support.databases import PG_ADMIN, Database
from tests.support.env import pointed_at
from tests.support.factories import make_agent, refund_proposal

pytestmark = pytest.mark.postgres

REFUSED = [
    "UPDATE audit_events SET actor = 'user:mallory'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER USER",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update",
    "DROP TRIGGER audit_events_no_update ON audit_events",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_checkpoints SET hash = 'x'",
    "DELETE FROM audit_head",
    "INSERT INTO audit_head (id, seq, hash, mac) VALUES (2, 0, 'x', '')",
    "DROP TABLE proposals",
    "UPDATE alembic_version SET version_num = '0001'",
]


@pytest.fixture
def owned(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    """A database migrated by its owner, and an application role granted by `signoff db`."""
    db = databases.create("postgres", tmp_path)
    role = f"signoff_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        yield db, role
    finally:
        databases.drop(db)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_the_app_role_runs_signoff_but_cannot_change_the_trail(owned: tuple[Database, str]) -> None:
    db, role = owned
    granted = subprocess.run(
        [sys.executable, "-m", "backend.cli", "db", "grant-app-role", role],
        env={"SIGNOFF_DATABASE_URL": db.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert granted.returncode == 0, granted.stderr
    app_db = Database("postgres", db.url.replace("postgres@", f"{role}@", 1), db.name)
    with pointed_at(app_db):
        with get_engine().connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == role
        # The whole flow works under the application role...
        agent = make_agent()
        body = refund_proposal(120)
        _, view, _ = placing.create(
            agent.id, ProposalCreate.model_validate(body), idempotency.fingerprint(body), None
        )
        lead = User(sub="lead", email=None, name=None, groups=("reviewer", "support_refunds"))
        decisions.decide(view["id"], lead, DecisionCreate(verdict="approve"))
        assert checkpoints.checkpoint_now() is not None
        # ...and every way of changing or unguarding the trail is refused by the database.
        for statement in REFUSED:
            with pytest.raises(DBAPIError) as refused, get_engine().begin() as conn:
                conn.execute(text(statement))
            message = str(refused.value.orig)
            assert "permission denied" in message or "must be owner" in message, (statement, message)
        with read_session() as session:
            assert verification.verify_full(session).ok
