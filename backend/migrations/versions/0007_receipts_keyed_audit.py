"""receipts, keyed audit trail and checkpoints, sealed webhook secrets, executor result schema

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
_TS = models.common.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("jti", sa.String(length=26), nullable=False),
        sa.Column("proposal_id", sa.String(length=26), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"]),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_receipts_proposal_id", "receipts", ["proposal_id"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("token", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "audit_verify_jobs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=300), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # Plain ADD COLUMN (no batch copy on SQLite, which would drop audit_events' triggers).
    op.add_column("audit_events", sa.Column("mac", sa.String(length=100), nullable=True))
    op.add_column("audit_head", sa.Column("mac", sa.String(length=100), nullable=False, server_default=""))
    op.add_column("executions", sa.Column("receipt_jti", sa.String(length=26), nullable=True))
    op.add_column("executions", sa.Column("response", _JSON, nullable=True))
    op.create_index("uq_executions_receipt_jti", "executions", ["receipt_jti"], unique=True)
    op.add_column("action_types", sa.Column("result_schema", _JSON, nullable=True))
    # A sealed secret is longer than the plaintext; SQLite does not enforce lengths.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("webhook_endpoints", "secret", type_=sa.String(length=500), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("webhook_endpoints", "secret", type_=sa.String(length=100), existing_nullable=False)
    op.drop_column("action_types", "result_schema")
    op.drop_index("uq_executions_receipt_jti", table_name="executions")
    op.drop_column("executions", "response")
    op.drop_column("executions", "receipt_jti")
    op.drop_column("audit_head", "mac")
    op.drop_column("audit_events", "mac")
    op.drop_table("audit_verify_jobs")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_receipts_proposal_id", table_name="receipts")
    op.drop_table("receipts")
