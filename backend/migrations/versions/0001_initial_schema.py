"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 12:36:39.388522
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_types",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "payload_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("risk", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("approver_role", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("default_expiry_seconds", sa.Integer(), nullable=False),
        sa.Column(
            "reason_codes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("executor_webhook", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "agents",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("breaker_tripped_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("breaker_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_name"), ["name"], unique=True)

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_subject"), ["subject"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "key"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False)

    op.create_table(
        "system_flags",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column(
            "scopes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_keys_key_hash"), ["key_hash"], unique=True)

    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("action_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("dial", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_type"],
            ["action_types.name"],
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "action_type"),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grants_agent_id"), ["agent_id"], unique=False)

    op.create_table(
        "proposals",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("action_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("action_type_version", sa.Integer(), nullable=False),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("dial", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("policy_outcome", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "policy_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "flags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("claimed_by_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("claim_expires_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_type"],
            ["action_types.name"],
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposals_action_type"), ["action_type"], unique=False)
        batch_op.create_index("ix_proposals_agent_created", ["agent_id", "created_at"], unique=False)
        batch_op.create_index("ix_proposals_status_expires_id", ["status", "expires_at", "id"], unique=False)

    op.create_table(
        "decisions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("proposal_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reviewer_sub", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("reviewer_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("reviewer_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column(
            "reviewer_groups",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "reason_codes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "edited_payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column(
            "policy_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decisions_proposal_id"), ["proposal_id"], unique=False)

    op.create_table(
        "executions",
        sa.Column("proposal_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reported_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
        ),
        sa.PrimaryKeyConstraint("proposal_id"),
        sa.UniqueConstraint("proposal_id"),
    )

    _append_only_audit()
    _seed()


def downgrade() -> None:
    op.drop_table("executions")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decisions_proposal_id"))

    op.drop_table("decisions")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_proposals_status_expires_id")
        batch_op.drop_index("ix_proposals_agent_created")
        batch_op.drop_index(batch_op.f("ix_proposals_action_type"))

    op.drop_table("proposals")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grants_agent_id"))

    op.drop_table("grants")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_key_hash"))
        batch_op.drop_index(batch_op.f("ix_api_keys_agent_id"))

    op.drop_table("api_keys")
    op.drop_table("system_flags")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))

    op.drop_table("idempotency_keys")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_subject"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_actor"))
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))

    op.drop_table("audit_events")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_name"))

    op.drop_table("agents")
    op.drop_table("action_types")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS signoff_audit_append_only() CASCADE")


_REFUND_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_id", "order_id", "amount_usd", "currency", "reason"],
    "properties": {
        "customer_id": {"type": "string", "minLength": 1, "maxLength": 100},
        "order_id": {"type": "string", "minLength": 1, "maxLength": 100},
        "amount_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
    },
}

_REFUND_REASONS = [
    {"code": "wrong_amount", "label": "Wrong amount", "description": "The amount is not what is owed."},
    {
        "code": "not_eligible",
        "label": "Not eligible",
        "description": "The order or customer does not qualify.",
    },
    {"code": "policy_violation", "label": "Policy violation", "description": "Breaks the refund policy."},
    {
        "code": "insufficient_evidence",
        "label": "Insufficient evidence",
        "description": "The evidence does not support the action.",
    },
    {"code": "duplicate", "label": "Duplicate", "description": "Already refunded or already proposed."},
    {
        "code": "suspected_prompt_injection",
        "label": "Suspected prompt injection",
        "description": "The customer's text tried to steer the agent.",
    },
    {
        "code": "wrong_customer",
        "label": "Wrong customer",
        "description": "The action targets the wrong account.",
    },
    {"code": "other", "label": "Other", "description": "Explain in the comment."},
]


def _append_only_audit() -> None:
    """The database itself refuses to change or remove audit events."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION signoff_audit_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_events is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION signoff_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION signoff_audit_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def _seed() -> None:
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer),
            sa.column("seq", sa.Integer),
            sa.column("hash", sa.String),
        ),
        [{"id": 1, "seq": 0, "hash": "0" * 64}],
    )
    op.bulk_insert(
        sa.table(
            "action_types",
            sa.column("name", sa.String),
            sa.column("version", sa.Integer),
            sa.column("description", sa.String),
            sa.column("payload_schema", sa.JSON),
            sa.column("risk", sa.String),
            sa.column("approver_role", sa.String),
            sa.column("approvals_required", sa.Integer),
            sa.column("default_expiry_seconds", sa.Integer),
            sa.column("reason_codes", sa.JSON),
            sa.column("executor_webhook", sa.String),
            sa.column("updated_at", models.common.UTCDateTime),
        ),
        [
            {
                "name": "refund",
                "version": 1,
                "description": "Refund part or all of an order to the customer.",
                "payload_schema": _REFUND_SCHEMA,
                "risk": "high",
                "approver_role": "support_refunds",
                "approvals_required": 1,
                "default_expiry_seconds": 24 * 3600,
                "reason_codes": _REFUND_REASONS,
                "executor_webhook": None,
                "updated_at": models.common.utcnow(),
            }
        ],
    )
