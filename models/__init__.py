"""SQLModel tables and pydantic wire schemas, one module per domain.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic and
tests rely on that).
"""

from models import action_types, agents, audit, common, evals, idempotency, proposals, system  # noqa: F401
