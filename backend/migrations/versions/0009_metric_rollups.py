"""Rollups behind /v1/metrics (metric_counts, metric_reasons, decision_times) and the indexes
the metrics' partial day and the queue's claimed badge read

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.evals import rollup
from models.common import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _group() -> list[sa.Column]:
    return [
        sa.Column("agent_id", sa.String(length=26), primary_key=True),
        sa.Column("action_type", sa.String(length=100), primary_key=True),
    ]


def _day() -> sa.Column:
    return sa.Column("day", sa.String(length=10), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "metric_counts",
        # Group, then day: a summary sums each group's days in key order, with no sort.
        *_group(),
        _day(),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in rollup.COUNTERS),
    )
    op.create_table(
        "metric_reasons",
        *_group(),
        sa.Column("code", sa.String(length=200), primary_key=True),
        _day(),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "decision_times",
        sa.Column("decision_id", sa.String(length=26), primary_key=True),
        sa.Column("agent_id", sa.String(length=26), nullable=False),
        sa.Column("action_type", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
    )
    group_seconds = ["agent_id", "action_type", "seconds", "created_at"]
    op.create_index("ix_decision_times_group_seconds", "decision_times", group_seconds)
    op.create_index("ix_decision_times_created", "decision_times", ["created_at"])
    op.create_index("ix_proposals_created", "proposals", ["created_at"])
    op.create_index(
        "ix_proposals_status_claim_expires", "proposals", ["status", "claim_expires_at", "expires_at"]
    )
    by_type = ["status", "action_type", "expires_at", "claim_expires_at"]
    op.create_index("ix_proposals_status_type_expires", "proposals", by_type)
    # What is stored already is counted once, here; from now on the rollups commit step keeps it.
    rollup.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_proposals_status_type_expires", table_name="proposals")
    op.drop_index("ix_proposals_status_claim_expires", table_name="proposals")
    op.drop_index("ix_proposals_created", table_name="proposals")
    op.drop_table("decision_times")
    op.drop_table("metric_reasons")
    op.drop_table("metric_counts")
