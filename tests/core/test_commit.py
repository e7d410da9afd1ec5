"""Commit-time work runs as the listed steps, in order, and only once installed."""

import pytest

from backend import on_commit
from backend.audit import chain as audit
from backend.audit import verification
from backend.core import commit
from backend.core.db import read_session, transaction
from models.audit import AuditAction, AuditEvent
from tests.support.databases import Database


def test_steps_run_in_the_listed_order() -> None:
    assert commit.installed() == ("audit", "webhooks", "waiting", "metrics", "rollups")
    assert [step.name for step in on_commit.STEPS] == list(commit.installed())


def test_installing_twice_runs_each_step_once(db: Database) -> None:
    on_commit.install()
    with transaction() as session:
        audit.record(session, "system:test", AuditAction.POLICY_UPDATED, "thing:once")
    with read_session() as session:
        rows = session.query(AuditEvent).filter(AuditEvent.subject == "thing:once").all()
    assert len(rows) == 1
    with read_session() as session:
        result = verification.verify_full(session)
    assert result.ok, result.reason


def test_an_unknown_audit_action_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="not a valid AuditAction"), transaction() as session:
        audit.record(session, "system:test", "made.up", "thing:1")  # type: ignore[arg-type]


def test_recording_without_the_commit_steps_fails_loudly(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that never installed the steps would commit changes with no audit event."""
    monkeypatch.setattr(commit, "active", ())
    with pytest.raises(audit.CommitStepsMissing), transaction() as session:
        audit.record(session, "system:test", AuditAction.POLICY_UPDATED, "thing:2")
