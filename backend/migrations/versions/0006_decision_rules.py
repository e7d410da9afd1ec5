"""decision rules: quorum progress, separation of duties, edit limits, escalation, assignment

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("action_types") as t:
        t.add_column(
            sa.Column("separation_of_duties", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        t.add_column(sa.Column("editable_fields", _JSON, nullable=True))
        t.add_column(
            sa.Column("edits_may_raise_money", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        t.add_column(sa.Column("remind_after_seconds", sa.Integer(), nullable=True))
        t.add_column(sa.Column("escalate_after_seconds", sa.Integer(), nullable=True))
        t.add_column(sa.Column("escalate_to", sa.String(length=100), nullable=True))
        t.add_column(sa.Column("on_expiry", sa.String(length=10), nullable=False, server_default="reject"))
    with op.batch_alter_table("agents") as t:
        t.add_column(sa.Column("created_by", sa.String(length=300), nullable=True))
    with op.batch_alter_table("grants") as t:
        t.add_column(sa.Column("granted_by", sa.String(length=300), nullable=True))
    with op.batch_alter_table("proposals") as t:
        t.add_column(sa.Column("approval_count", sa.Integer(), nullable=False, server_default="0"))
        t.add_column(sa.Column("approvals_required", sa.Integer(), nullable=True))
        t.add_column(sa.Column("assigned_to", sa.String(length=300), nullable=True))
        t.add_column(sa.Column("reminded_at", models.common.UTCDateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("escalated_at", models.common.UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_proposals_assigned_to", "proposals", ["assigned_to"])
    # The seeded refund: a reviewer may correct the amount (downwards) and the reason only.
    action_types = sa.table("action_types", sa.column("name", sa.String), sa.column("editable_fields", _JSON))
    op.execute(
        action_types.update()
        .where(action_types.c.name == "refund")
        .values(editable_fields=["amount_usd", "reason"])
    )


def downgrade() -> None:
    op.drop_index("ix_proposals_assigned_to", table_name="proposals")
    with op.batch_alter_table("proposals") as t:
        for name in ("escalated_at", "reminded_at", "assigned_to", "approvals_required", "approval_count"):
            t.drop_column(name)
    with op.batch_alter_table("grants") as t:
        t.drop_column("granted_by")
    with op.batch_alter_table("agents") as t:
        t.drop_column("created_by")
    with op.batch_alter_table("action_types") as t:
        for name in (
            "on_expiry",
            "escalate_to",
            "escalate_after_seconds",
            "remind_after_seconds",
            "edits_may_raise_money",
            "editable_fields",
            "separation_of_duties",
        ):
            t.drop_column(name)
