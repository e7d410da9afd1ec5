"""Test databases: a SQLite file or a fresh PostgreSQL database, migrated to head."""

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_ADMIN = os.environ.get("SIGNOFF_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


@dataclass(frozen=True)
class Database:
    kind: str
    url: str
    name: str = ""


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def require_postgres() -> None:
    if postgres_available():
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_ADMIN}")
    pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}; start it to run these tests")


def create(kind: str, tmp_dir: Path) -> Database:
    from backend.core import schema
    from backend.core.db import make_engine

    if kind == "sqlite":
        path = tmp_dir / f"signoff-{uuid.uuid4().hex[:8]}.db"
        db = Database("sqlite", f"sqlite:///{path}")
    else:
        require_postgres()
        name = f"signoff_t_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0]
        db = Database("postgres", f"{base}/{name}", name)
    engine = make_engine(db.url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    return db


def drop(db: Database) -> None:
    if db.kind == "postgres":
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
