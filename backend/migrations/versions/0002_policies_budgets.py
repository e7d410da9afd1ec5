"""policies, budgets and usage counters; seeds the default policy as version 1

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:00:00
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "default.cedar"


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("policy_ids", _json(), nullable=False),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("action_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("allowed_action_types", _json(), nullable=True),
        sa.Column("max_tool_calls_per_task", sa.Integer(), nullable=True),
        sa.Column("max_tokens_per_task", sa.Integer(), nullable=True),
        sa.Column("max_proposals_per_day", sa.Integer(), nullable=True),
        sa.Column("max_cost_usd_per_day", sa.Float(), nullable=True),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "action_type"),
    )
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budgets_agent_id"), ["agent_id"], unique=False)
    op.create_table(
        "agent_usage",
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("action_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("proposals", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "day", "action_type"),
    )
    op.create_table(
        "agent_guards",
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("recent_tool_calls", _json(), nullable=False),
        sa.Column("recent_denials", _json(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    _seed_default_policy()


def downgrade() -> None:
    op.drop_table("agent_guards")
    op.drop_table("agent_usage")
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budgets_agent_id"))
    op.drop_table("budgets")
    op.drop_table("policy_versions")


def _seed_default_policy() -> None:
    """Version 1 is the shipped, commented default.cedar, read as the file stands."""
    from backend.controls.policy.text import policy_ids

    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    op.bulk_insert(
        sa.table(
            "policy_versions",
            sa.column("version", sa.Integer),
            sa.column("text", sa.String),
            sa.column("comment", sa.String),
            sa.column("policy_ids", sa.JSON),
            sa.column("created_at", models.common.UTCDateTime),
            sa.column("created_by", sa.String),
        ),
        [
            {
                "version": 1,
                "text": text,
                "comment": "Shipped default policy",
                "policy_ids": policy_ids(text),
                "created_at": models.common.utcnow(),
                "created_by": "system",
            }
        ],
    )
