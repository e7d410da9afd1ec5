"""eval data: annotations, scenario suites and runs, eval gates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:44:04.646145
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_suites",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("action_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "cases",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "eval_gates",
        sa.Column("action_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("suite", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("min_pass_rate", sa.Float(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_type"],
            ["action_types.name"],
        ),
        sa.PrimaryKeyConstraint("action_type"),
    )
    op.create_table(
        "eval_runs",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("suite", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("action_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("prompt_version", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("pass_rate", sa.Float(), nullable=True),
        sa.Column(
            "by_reason",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "failures",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_eval_runs_agent_suite_created", ["agent_id", "suite", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_eval_runs_suite"), ["suite"], unique=False)

    op.create_table(
        "annotations",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("proposal_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("author_sub", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("author_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column(
            "labels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_annotations_proposal_id"), ["proposal_id"], unique=False)

    op.create_table(
        "eval_run_proposals",
        sa.Column("proposal_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=26), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["eval_runs.id"],
        ),
        sa.PrimaryKeyConstraint("proposal_id"),
    )
    with op.batch_alter_table("eval_run_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_run_proposals_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eval_run_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_run_proposals_run_id"))

    op.drop_table("eval_run_proposals")
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_annotations_proposal_id"))

    op.drop_table("annotations")
    with op.batch_alter_table("eval_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_runs_suite"))
        batch_op.drop_index("ix_eval_runs_agent_suite_created")

    op.drop_table("eval_runs")
    op.drop_table("eval_gates")
    op.drop_table("eval_suites")
