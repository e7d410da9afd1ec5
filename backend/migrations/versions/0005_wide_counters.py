"""64-bit counters (an agent's daily usage, the budgets' limits); hard budgets; rate limit windows

A day of more than 2^31 tokens overflowed ``agent_usage.tokens`` (a 32-bit integer on
PostgreSQL) and every proposal of that agent failed until midnight. SQLite's integers are
64-bit already; the batch mode keeps the migration portable.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {
    "agent_usage": ("proposals", "tokens"),
    "budgets": ("max_tool_calls_per_task", "max_tokens_per_task", "max_proposals_per_day"),
}


def _alter(wide: bool) -> None:
    old, new = (sa.Integer(), sa.BigInteger()) if wide else (sa.BigInteger(), sa.Integer())
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=new, existing_type=old)


def upgrade() -> None:
    postgres = op.get_context().dialect.name == "postgresql"
    if postgres:
        _alter(wide=True)
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("hard", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Per-agent rate limit windows (backend/core/ratelimit.py), shared by every replica on
    # PostgreSQL: unlogged, as a lost count after a crash costs nothing.
    op.create_table(
        "rate_limit_windows",
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", "window_start"),
        prefixes=["UNLOGGED"] if postgres else [],
    )


def downgrade() -> None:
    op.drop_table("rate_limit_windows")
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("hard")
    if op.get_context().dialect.name == "postgresql":
        _alter(wide=False)
