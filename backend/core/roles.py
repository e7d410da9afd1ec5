"""Least privilege on PostgreSQL: what the application's own role may do.

Two roles (``docs/operations.md``): the owner, which owns the tables and runs the
migrations, and the application role, which the API and the worker connect as. The
application role is not the tables' owner, so it cannot alter a table, drop or disable a
trigger; and it has no UPDATE, DELETE or TRUNCATE on the audit trail. ``signoff db
grant-app-role NAME``, run as the owner after each migration, applies these grants.
"""

import re

from sqlalchemy import Connection, text

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Append-only: read and add, never change or remove.
APPEND_ONLY = ("audit_events", "audit_checkpoints")


def app_role_grants(role: str) -> list[str]:
    if not _NAME.match(role):
        raise ValueError("A role name is lower-case letters, digits and underscores.")
    tables = ", ".join(APPEND_ONLY)
    return [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM {role}",
        # The head moves (UPDATE) but is never added to or removed.
        f"REVOKE INSERT, DELETE, TRUNCATE ON audit_head FROM {role}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
    ]


def grant_app_role(conn: Connection, role: str) -> None:
    for statement in app_role_grants(role):
        conn.execute(text(statement))
