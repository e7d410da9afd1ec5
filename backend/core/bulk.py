"""Writing a batch's rows with as few round trips as PostgreSQL allows.

Placing a batch of proposals writes a few dozen rows (proposals, idempotency keys, audit
events). As ``executemany`` each row is its own statement: SQLAlchemy processes its
parameters, psycopg encodes and sends it, and PostgreSQL runs it. :func:`insert_rows`
sends one ``INSERT ... VALUES (...), (...)`` per table through psycopg's raw cursor
instead, and skips SQLAlchemy's per-row work (JSON values are encoded here with the
engine's own encoder); the statement text is kept per table, columns and row count, so
psycopg prepares the common shapes once per connection. :func:`pipelined` sends writes
that return nothing without waiting for each answer, and :func:`fetch_later` lets a
one-row read ride along. SQLite runs in process, gains
nothing from either and keeps plain ``executemany``.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import JSON, Connection, Dialect, Select, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError

from backend.core.db import json_dumps

__all__ = ["fetch_later", "insert_rows", "pipelined"]

# PostgreSQL takes at most 65,535 parameters per statement; larger batches are split.
_MAX_PARAMETERS = 65_535


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, which must all name the same columns, in the caller's transaction.
    A violated constraint raises SQLAlchemy's ``IntegrityError`` on either database."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    names = tuple(rows[0])
    encoders = _encoders(table, names)
    per_statement = max(1, _MAX_PARAMETERS // len(names))
    raw = _psycopg(conn)
    # A raw cursor sends PostgreSQL's own $n placeholders as they are: psycopg would
    # otherwise parse every long statement (it caches only short ones) for its %s.
    with psycopg.RawCursor(raw) as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            statement = _statement(table, names, len(chunk))
            params = [
                encode(row[name]) for row in chunk for name, encode in zip(names, encoders, strict=True)
            ]
            try:
                cursor.execute(statement, params)
            except psycopg.errors.IntegrityError as exc:
                raise IntegrityError(f"INSERT INTO {table.name}", None, exc) from exc


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """Send the statements run inside without waiting for each one's answer (psycopg's
    pipeline mode): writes that return nothing then cost one round trip together, not
    one each. Statements inside must not read results. A no-op on SQLite, in process.

    An error surfaces at the end of the block (as SQLAlchemy's ``IntegrityError`` for a
    violated constraint), and the transaction must then be rolled back, as after any error.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    try:
        with _psycopg(conn).pipeline():
            yield
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError("pipelined writes", None, exc) from exc


def fetch_later(conn: Connection, statement: Select[Any]) -> Callable[[], Sequence[Any]]:
    """Run a one-row ``SELECT`` now, inside :func:`pipelined` if it is open, and return
    how to read its row later (SQLAlchemy cannot read a result inside a pipeline; psycopg
    can, once the pipeline has ended). The statement's parameters are inlined."""
    if conn.dialect.name != "postgresql":
        row = conn.execute(statement).one()
        return lambda: row
    cursor = _psycopg(conn).cursor()
    cursor.execute(_literal_sql(statement, conn.dialect))

    def row() -> Sequence[Any]:
        with cursor:
            found = cursor.fetchone()
        assert found is not None, "fetch_later takes statements that return one row"
        return found

    return row


def _psycopg(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


@lru_cache
def _literal_sql(statement: Select[Any], dialect: Dialect) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _identity(value: Any) -> Any:
    return value


def _json(value: Any) -> str | None:
    # The same text the column type would send through SQLAlchemy.
    return None if value is None else json_dumps(value)


@lru_cache
def _encoders(table: Table, names: tuple[str, ...]) -> list[Callable[[Any], Any]]:
    return [_json if isinstance(table.c[name].type, JSON) else _identity for name in names]


@lru_cache(maxsize=512)
def _statement(table: Table, names: tuple[str, ...], count: int) -> str:
    """``INSERT INTO "t" ("a", "b") VALUES ($1, $2::jsonb), ...``; names are quoted by psycopg.
    Kept as text: composing it again on every call costs more than running it."""
    casts = []
    for name in names:
        column_type = table.c[name].type
        variant = getattr(column_type, "_variant_mapping", {}).get("postgresql", column_type)
        casts.append(
            "::jsonb" if isinstance(variant, JSONB) else "::json" if isinstance(variant, JSON) else ""
        )
    rows = []
    for index in range(count):
        first = index * len(names) + 1
        rows.append("(" + ", ".join(f"${first + i}{cast}" for i, cast in enumerate(casts)) + ")")
    return sql.SQL("INSERT INTO {} ({}) VALUES ").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(name) for name in names)
    ).as_string(None) + ", ".join(rows)
