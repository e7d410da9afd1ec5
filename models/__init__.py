"""SQLModel tables and pydantic wire schemas, one module per domain.

Importing this package registers every table on ``SQLModel.metadata`` (Alembic and
tests rely on that).
"""

from models import action_types, agents, audit, common, idempotency, proposals, system  # noqa: F401

# isort: split
from models import policies  # noqa: F401
