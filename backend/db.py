"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite runs in WAL mode with foreign keys on and a busy timeout. Every write
transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads
first and writes later fails at once with SQLITE_BUSY_SNAPSHOT under concurrency,
whereas an immediate one queues for the write lock within the busy timeout.
Read-only work uses :func:`read_session`, which keeps SQLite's cheap deferred begin.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from backend.settings import get_settings

_READ_ONLY = "signoff_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for both."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername in {
        "postgresql",
        "postgres",
    }:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout; stale connections are recycled instead.
    return create_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin) instead of pysqlite's implicit one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


def reset_engine() -> None:
    """Forget the cached engine (tests switch databases between sessions)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


def write_session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def read_session() -> Session:
    return Session(get_engine().execution_options(**{_READ_ONLY: True}), expire_on_commit=False)


@contextmanager
def transaction() -> Iterator[Session]:
    """A write transaction: commits on success, rolls back on any exception."""
    with write_session() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
