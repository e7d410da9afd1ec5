"""64-bit counters: an agent's daily usage and the budgets' limits

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
    if op.get_context().dialect.name == "postgresql":
        _alter(wide=True)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _alter(wide=False)
