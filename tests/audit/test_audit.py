"""The audit trail is append-only in the database and its chain names the first bad link."""

import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from backend.audit import chain as audit
from backend.audit import verification
from backend.core.db import get_engine, read_session, transaction
from models.audit import AuditAction
from tests.support.databases import Database
from tests.support.factories import make_agent


def _seed_events(n: int = 5) -> None:
    for i in range(n):
        with transaction() as session:
            audit.record(
                session,
                "system:test",
                AuditAction.POLICY_UPDATED,
                f"thing:{i}",
                {"i": i, "nested": {"x": [1, 2.5]}},
            )


def _drop_triggers(db: Database) -> None:
    with get_engine().begin() as conn:
        if db.kind == "postgres":
            conn.execute(text("DROP TRIGGER audit_events_no_update ON audit_events"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))


def _verify_cli(db: Database) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "audit", "verify", "--json"],
        env={"SIGNOFF_DATABASE_URL": db.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_chain_verifies_after_real_activity(fresh_database: Database) -> None:
    make_agent()
    _seed_events()
    with read_session() as session:
        result = verification.verify_full(session)
    assert result.ok and result.events == 7  # agent.created, key.created and the 5 test events
    assert _verify_cli(fresh_database).returncode == 0


def test_database_refuses_update_and_delete(fresh_database: Database) -> None:
    _seed_events(1)
    for statement in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError), get_engine().begin() as conn:
            conn.execute(text(statement))
    with read_session() as session:
        assert verification.verify_full(session).ok


def test_tampered_row_is_named(fresh_database: Database) -> None:
    _seed_events(5)
    with read_session() as session:
        target = [e for e in audit.iter_events(session)][2]
    _drop_triggers(fresh_database)
    with get_engine().begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET actor = 'user:mallory' WHERE id = :id"),
            {"id": target.id},
        )
    with read_session() as session:
        result = verification.verify_full(session)
    assert not result.ok
    assert result.first_bad == target.id
    assert "hash" in (result.reason or "")
    cli = _verify_cli(fresh_database)
    assert cli.returncode == 1
    assert target.id in cli.stdout


def test_removed_tail_is_detected(fresh_database: Database) -> None:
    _seed_events(3)
    _drop_triggers(fresh_database)
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)"))
    with read_session() as session:
        result = verification.verify_full(session)
    assert not result.ok
    assert "removed" in (result.reason or "")


def test_rewritten_chain_is_caught_at_the_first_rewritten_link(fresh_database: Database) -> None:
    """Re-hashing one event without the audit key leaves its MAC wrong: the forgery is named."""
    _seed_events(4)
    with read_session() as session:
        events = list(audit.iter_events(session))
    victim = events[1]
    forged = audit.compute_hash(
        victim.prev_hash,
        seq=victim.seq,
        id=victim.id,
        at=victim.at,
        actor=victim.actor,
        action=victim.action,
        subject=victim.subject,
        data={"i": 999},
    )
    _drop_triggers(fresh_database)
    with get_engine().begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET data = :d, hash = :h WHERE id = :id"),
            {"d": '{"i": 999}', "h": forged, "id": victim.id},
        )
    with read_session() as session:
        result = verification.verify_full(session)
    assert not result.ok
    assert result.first_bad == victim.id
    assert "MAC" in (result.reason or "")
