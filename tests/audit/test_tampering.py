"""Tampering with the database, as someone with write access but not the keys would.

Each case of the acceptance list is one test, and each asserts that verification names the
row that was changed: removing the tail and moving the head back, rewriting an approval as
a rejection and re-hashing every later event, editing a proposal's payload, a decision or an
execution, appending a forged event, and (PostgreSQL) the application role disabling the
append-only trigger.
"""

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, text, update

from backend.audit import chain as audit
from backend.audit import checkpoints, verification
from backend.auth.oidc import User
from backend.core.db import get_engine, read_session
from backend.proposals import decisions, idempotency, outcomes, placing
from models.audit import AuditEvent
from models.proposals import DecisionCreate, ExecutionReport, ProposalCreate
from tests.support.databases import Database
from tests.support.factories import make_agent, refund_proposal

LEAD = User(sub="lead", email="lead@example.com", name="Lee", groups=("reviewer", "support_refunds"))


@dataclass
class Activity:
    approved: str
    rejected: str
    executed: str


def _place(agent_id: str, amount: float) -> str:
    body = refund_proposal(amount)
    status, view, _ = placing.create(
        agent_id, ProposalCreate.model_validate(body), idempotency.fingerprint(body), None
    )
    assert status == 201, view
    return str(view["id"])


def _activity() -> Activity:
    """Real activity: proposals approved, rejected, approved and executed."""
    agent = make_agent()
    approved, rejected, executed = (_place(agent.id, a) for a in (120, 130, 140))
    decisions.decide(approved, LEAD, DecisionCreate(verdict="approve"))
    decisions.decide(rejected, LEAD, DecisionCreate(verdict="reject", reason_codes=["policy_violation"]))
    decisions.decide(executed, LEAD, DecisionCreate(verdict="approve"))
    outcomes.report_execution(
        executed, agent.id, ExecutionReport(status="succeeded", result={"refund_id": "re_1"})
    )
    return Activity(approved, rejected, executed)


def _unguard(db: Database) -> None:
    """What an attacker who owns the tables does first: the append-only triggers go."""
    with get_engine().begin() as conn:
        if db.kind == "postgres":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))


def _full() -> verification.AuditVerification:
    """The full walk in this process, and split by seq over three processes (the CLI's way,
    here with ranges of a few events): both give the same answer, down to the first
    discrepancy, its reason and how many events were checked before it."""
    with read_session() as session:
        alone = verification.verify_full(session)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verification, "_MIN_SPAN", 1)
        with read_session() as session:
            split = verification.verify_full(session, workers=3)
    assert split == alone
    return alone


def _incremental() -> verification.AuditVerification:
    with read_session() as session:
        return verification.verify_incremental(session)


def _events() -> list[dict]:
    with get_engine().connect() as conn:
        table = AuditEvent.__table__  # typed columns: timestamps come back as datetimes on SQLite too
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.seq))]


def _decided_event(pid: str) -> dict:
    (event,) = [
        e for e in _events() if e["subject"] == f"proposal:{pid}" and e["action"] == "proposal.decided"
    ]
    return event


def _data(event: dict) -> dict:
    data = event["data"]
    return orjson.loads(data) if isinstance(data, str) else data


def test_untouched_activity_verifies_fully_and_incrementally(fresh_database: Database) -> None:
    _activity()
    full = _full()
    assert full.ok and full.full and full.unkeyed == 0, full
    assert full.events == full.checked and full.events > 10
    checkpoints.checkpoint_now()
    _activity()
    since = _incremental()
    assert since.ok and not since.full and since.checkpoint is not None
    assert since.checked == since.events - since.checkpoint.seq  # only what came after the checkpoint


def test_tail_deleted_and_head_moved_back_is_detected(fresh_database: Database) -> None:
    """Row: the head (audit_head), moved back over the removed events."""
    _activity()
    events = _events()
    keep = events[-4]
    _unguard(fresh_database)
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > :s"), {"s": keep["seq"]})
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": keep["seq"], "h": keep["hash"]})
    for result in (_full(), _incremental()):
        assert not result.ok
        assert result.first_bad == "audit_head" and "moved" in (result.reason or ""), result


def test_tail_deleted_behind_a_checkpoint_is_named_by_the_checkpoint(fresh_database: Database) -> None:
    """Row: the checkpoint that signed the removed events (checkpoint:<seq>)."""
    _activity()
    cp = checkpoints.checkpoint_now()
    assert cp is not None
    _unguard(fresh_database)
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > :s"), {"s": cp.seq - 2})
    result = _incremental()
    assert not result.ok and result.first_bad == f"checkpoint:{cp.seq}", result
    assert "removed" in (result.reason or "")


def test_tail_and_checkpoints_deleted_is_caught_by_the_file_sink(
    fresh_database: Database, tmp_path: Path
) -> None:
    """Row: the external sink's last checkpoint. The attacker saved an old head row (with its
    valid MAC), later deletes the events after it, every checkpoint, and restores that head:
    the database alone now looks whole, and only the append-only sink outside it disagrees."""
    _activity()
    with get_engine().connect() as conn:
        saved = conn.execute(text("SELECT seq, hash, mac FROM audit_head")).one()
    _activity()
    sink = f"file:{tmp_path / 'anchors.jsonl'}"
    cp = checkpoints.checkpoint_now()
    assert cp is not None
    checkpoints.export(cp, sink)
    _unguard(fresh_database)
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoints"))
        conn.execute(text("DELETE FROM audit_events WHERE seq > :s"), {"s": saved.seq})
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h, mac = :m"),
            {"s": saved.seq, "h": saved.hash, "m": saved.mac},
        )
        if fresh_database.kind == "postgres":
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        else:
            for verb in ("update", "delete"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER audit_events_no_{verb} BEFORE {verb.upper()} ON audit_events "
                        "BEGIN SELECT RAISE(ABORT, 'append-only'); END"
                    )
                )
    with read_session() as session:
        fooled = verification.verify_full(session, cross_checked=False, sink="")
        assert fooled.ok  # the database alone is fooled
        result = verification.verify_full(session, cross_checked=False, sink=sink)
    assert not result.ok and result.first_bad == "the external sink's last checkpoint", result
    assert "removed" in (result.reason or "")


def test_approval_rewritten_as_rejection_and_chain_rehashed_is_detected(fresh_database: Database) -> None:
    """Row: the proposal.decided event rewritten (its id), though every later hash was recomputed."""
    activity = _activity()
    target = _decided_event(activity.approved)
    forged_data = {**_data(target), "verdict": "reject", "reason_codes": ["policy_violation"]}
    _unguard(fresh_database)
    rows = _events()
    prev = None
    with get_engine().begin() as conn:
        for row in rows:
            if row["seq"] < target["seq"]:
                continue
            data = forged_data if row["id"] == target["id"] else _data(row)
            prev = row["prev_hash"] if prev is None else prev
            digest = audit.compute_hash(
                prev,
                seq=row["seq"],
                id=row["id"],
                at=row["at"],
                actor=row["actor"],
                action=row["action"],
                subject=row["subject"],
                data=data,
            )
            conn.execute(
                text("UPDATE audit_events SET data = :d, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"d": orjson.dumps(data).decode(), "p": prev, "h": digest, "s": row["seq"]},
            )
            prev = digest
        conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
        conn.execute(
            text("UPDATE decisions SET verdict = 'reject' WHERE proposal_id = :p"), {"p": activity.approved}
        )
    result = _full()
    assert not result.ok and result.first_bad == target["id"], result
    assert "MAC" in (result.reason or "")


def test_edited_payload_is_named(fresh_database: Database) -> None:
    """Row: proposals.<id>, whose payload no longer matches its proposal.created event."""
    activity = _activity()
    with get_engine().begin() as conn:
        row = conn.execute(
            text("SELECT payload FROM proposals WHERE id = :p"), {"p": activity.approved}
        ).scalar()
        payload = orjson.loads(row) if isinstance(row, str) else row
        payload["amount_usd"] = 9999
        conn.execute(
            text("UPDATE proposals SET payload = :v WHERE id = :p"),
            {"v": orjson.dumps(payload).decode(), "p": activity.approved},
        )
    result = _full()
    assert not result.ok and result.first_bad == f"proposal:{activity.approved}", result
    assert "payload" in (result.reason or "")


def test_edited_decision_is_named(fresh_database: Database) -> None:
    """Row: decisions.<id>, a rejection turned into an approval."""
    activity = _activity()
    with get_engine().begin() as conn:
        did = conn.execute(
            text("SELECT id FROM decisions WHERE proposal_id = :p"), {"p": activity.rejected}
        ).scalar()
        conn.execute(
            text("UPDATE decisions SET verdict = 'approve', reason_codes = '[]' WHERE id = :d"), {"d": did}
        )
    result = _full()
    assert not result.ok and result.first_bad == f"decision:{did}", result


def test_edited_decision_status_is_named(fresh_database: Database) -> None:
    """Row: proposals.<id>, moved from rejected to approved behind the trail's back."""
    activity = _activity()
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE proposals SET status = 'approved' WHERE id = :p"), {"p": activity.rejected})
    result = _full()
    assert not result.ok and result.first_bad == f"proposal:{activity.rejected}", result
    assert "status" in (result.reason or "")


def test_edited_execution_is_named(fresh_database: Database) -> None:
    """Row: executions.<proposal id>, its result changed."""
    activity = _activity()
    with get_engine().begin() as conn:
        conn.execute(
            text("UPDATE executions SET result = :r WHERE proposal_id = :p"),
            {"r": '{"refund_id": "re_other"}', "p": activity.executed},
        )
    result = _full()
    assert not result.ok and result.first_bad == f"execution:{activity.executed}", result


def test_deleted_execution_is_named(fresh_database: Database) -> None:
    """Row: executions.<proposal id>, gone though its proposal.executed event records it."""
    activity = _activity()
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM executions WHERE proposal_id = :p"), {"p": activity.executed})
    result = _full()
    assert not result.ok and result.first_bad == f"execution:{activity.executed}", result
    assert "row is missing" in (result.reason or "")


def test_edited_approval_payload_is_named(fresh_database: Database) -> None:
    """Row: decisions.<id>, the payload the reviewer edited changed afterwards (an untouched
    edit verifies: its row and its event record the same payload)."""
    agent = make_agent()
    pid = _place(agent.id, 150)
    with get_engine().connect() as conn:
        row = conn.execute(text("SELECT payload FROM proposals WHERE id = :p"), {"p": pid}).scalar()
    edited = {**(orjson.loads(row) if isinstance(row, str) else row), "amount_usd": 75.0}
    decisions.decide(pid, LEAD, DecisionCreate(verdict="approve", edited_payload=edited, comment="half"))
    assert _full().ok
    with get_engine().begin() as conn:
        did = conn.execute(text("SELECT id FROM decisions WHERE proposal_id = :p"), {"p": pid}).scalar()
        conn.execute(
            text("UPDATE decisions SET edited_payload = :v WHERE id = :d"),
            {"v": orjson.dumps({**edited, "amount_usd": 150.0}).decode(), "d": did},
        )
    result = _full()
    assert not result.ok and result.first_bad == f"decision:{did}", result


def test_forged_append_is_named(fresh_database: Database) -> None:
    """Row: the appended event (its id): a correct hash, but no MAC made with the audit key."""
    _activity()
    last = _events()[-1]
    forged = {
        "seq": last["seq"] + 1,
        "id": "01JZZZZZZZZZZZZZZZZZZZZZZZ",
        "actor": "user:mallory",
        "action": "proposal.decided",
        "subject": "proposal:x",
        "data": {"verdict": "approve"},
    }
    at = last["at"]
    digest = audit.compute_hash(last["hash"], at=at, **forged)
    fake_mac = "deadbeef:" + hashlib.sha256(b"guess").hexdigest()
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, id, at, actor, action, subject, data, prev_hash, hash, mac) "
                "VALUES (:seq, :id, :at, :actor, :action, :subject, :data, :prev, :hash, :mac)"
            ),
            {
                **forged,
                "at": at,
                "data": orjson.dumps(forged["data"]).decode(),
                "prev": last["hash"],
                "hash": digest,
                "mac": fake_mac,
            },
        )
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": forged["seq"], "h": digest})
    for result in (_full(), _incremental()):
        assert not result.ok and result.first_bad == forged["id"], result
        assert "MAC" in (result.reason or "")


def test_disabled_trigger_is_named(fresh_database: Database) -> None:
    """Row: the trigger itself, when the owner disabled (PostgreSQL) or dropped (SQLite) it."""
    _activity()
    _unguard(fresh_database)
    result = _full()
    assert not result.ok and (result.first_bad or "").startswith("trigger:audit_events_no_"), result


def test_a_time_stored_in_another_format_still_verifies(fresh_database: Database) -> None:
    """The same instant written as another client would (ISO 8601 with an offset, on SQLite)
    hashes as the original did: the walk parses it the slow way. Only the dropped or disabled
    trigger that let the rewrite through is named."""
    _activity()
    event = _events()[3]
    _unguard(fresh_database)
    with get_engine().begin() as conn:
        if fresh_database.kind == "sqlite":
            stored = conn.execute(
                text("SELECT at FROM audit_events WHERE seq = :s"), {"s": event["seq"]}
            ).scalar()
            other = stored.replace(" ", "T") + "+00:00"
            conn.execute(
                text("UPDATE audit_events SET at = :at WHERE seq = :s"), {"at": other, "s": event["seq"]}
            )
        else:  # timestamptz has no text format to vary: the same instant, rewritten
            conn.execute(text("UPDATE audit_events SET at = at WHERE seq = :s"), {"s": event["seq"]})
    result = _full()
    assert result.checked == result.events, result
    assert (result.first_bad or "").startswith("trigger:audit_events_no_"), result


def test_cli_full_verify_names_the_row(fresh_database: Database) -> None:
    activity = _activity()
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE proposals SET status = 'approved' WHERE id = :p"), {"p": activity.rejected})
    env = {"SIGNOFF_DATABASE_URL": fresh_database.url, "PATH": "/usr/bin:/bin"}
    verify = [sys.executable, "-m", "backend.cli", "audit", "verify", "--full"]
    for extra in ([], ["--workers", "1"]):
        run = subprocess.run([*verify, *extra], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 1
        assert activity.rejected in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([*verify, "--workers", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--workers" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def _boundaries() -> tuple[int, int]:
    """The seq where the second and the third of three ranges start, as the split walk cuts them."""
    with get_engine().connect() as conn:
        top = conn.execute(text("SELECT max(seq) FROM audit_events")).scalar_one()
    return top // 3 + 1, 2 * top // 3 + 1


def _set(seq: int, **values: object) -> None:
    with get_engine().begin() as conn:
        conn.execute(update(AuditEvent.__table__).where(AuditEvent.__table__.c.seq == seq).values(**values))  # type: ignore[attr-defined]


def _delete(low: int, high: int) -> None:
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= :a AND seq <= :b"), {"a": low, "b": high})


@pytest.mark.parametrize(
    "case",
    [
        "gap_at_boundary",
        "range_removed",
        "mac_removed_at_boundary",
        "edited_at_boundary",
        "relinked_at_boundary",
        "unkeyed_prefix_across_ranges",
    ],
)
def test_split_walk_joins_ranges_like_one_walk(fresh_database: Database, case: str) -> None:
    """Where the split walk's ranges meet, the checks one walk makes there (the next seq, the
    link to the event before, a MAC once the events before had one) are the parent's: each
    tampering right at a boundary is named as one walk names it (``_full`` compares them)."""
    _activity()
    _activity()
    second, third = _boundaries()
    events = {e["seq"]: e for e in _events()}
    _unguard(fresh_database)
    if case == "gap_at_boundary":
        _delete(second, second)
        named, reason = events[second + 1]["id"], f"expected {second}, found {second + 1}"
    elif case == "range_removed":
        _delete(second, third - 1)
        named, reason = events[third]["id"], f"expected {second}, found {third}"
    elif case == "mac_removed_at_boundary":
        _set(third, mac=None)
        named, reason = events[third]["id"], "no MAC"
    elif case == "edited_at_boundary":
        _set(second, data={**_data(events[second]), "forged": True})
        named, reason = events[second]["id"], "hash does not match"
    elif case == "relinked_at_boundary":
        _set(third, prev_hash="f" * 64)
        named, reason = events[third]["id"], "prev_hash does not match"
    else:  # written before the trail was keyed: accepted as a prefix from genesis
        with get_engine().begin() as conn:
            conn.execute(text("UPDATE audit_events SET mac = NULL WHERE seq <= :s"), {"s": third})
        result = _full()
        # The whole chain passes; only the triggers dropped to make the change are named.
        assert result.unkeyed == third and result.checked == result.events, result
        assert (result.first_bad or "").startswith("trigger:"), result
        return
    result = _full()
    assert not result.ok and result.first_bad == named and reason in (result.reason or ""), result
