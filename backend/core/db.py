"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite runs in WAL mode with foreign keys on and a busy timeout. Every write
transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads
first and writes later fails at once with SQLITE_BUSY_SNAPSHOT under concurrency,
whereas an immediate one queues for the write lock within the busy timeout.
Read-only work uses :func:`read_session`, which keeps SQLite's cheap deferred begin.
"""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from backend.core.settings import get_settings

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


def json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    # orjson for JSON columns: the standard library's encoder was ~5% of placing a proposal.
    kwargs.setdefault("json_serializer", json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
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


class _WriteLock:
    """One writer at a time, queued fairly, instead of SQLite's sleep-and-retry busy handler.

    SQLite allows one write transaction per database. Left to itself, a writer that finds
    the lock taken sleeps 1, 2, 5, 10... ms and tries again, so under load most writers
    sleep while the lock sits free. Here writers queue on a thread lock (in-process) and
    an ``flock`` on a file beside the database (across processes, e.g. uvicorn workers),
    and are woken the moment the previous writer finishes. Processes that do not take it
    (a CLI, a shell) still serialise through SQLite's own lock and busy timeout.
    """

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = f"{database}-writelock" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        # A forked worker must not share its parent's open file description (nor its lock).
        if self._path is not None and (self._fd is None or self._pid != os.getpid()):
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        return self._fd

    def acquire(self) -> None:
        self._thread_lock.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


_HOLDS_WRITE_LOCK = "signoff_holds_write_lock"


def _configure_sqlite(engine: Engine) -> None:
    lock = _WriteLock(engine.url.database)

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
            return
        record = conn.connection._connection_record
        # Held until the connection goes back to the pool (just after commit or rollback);
        # a connection that runs several transactions before that takes it once.
        if not record.info.get(_HOLDS_WRITE_LOCK):
            lock.acquire()
            record.info[_HOLDS_WRITE_LOCK] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _let_go(record)
            raise

    def _let_go(record: Any) -> None:
        if record.info.pop(_HOLDS_WRITE_LOCK, False):
            lock.release()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        _let_go(record)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi_conn: Any, record: Any, _exc: Any) -> None:
        _let_go(record)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


def reset_engine() -> None:
    """Forget the cached engine (tests switch databases between sessions)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


def read_only(engine: Engine) -> Engine:
    """The engine for reads only: on SQLite it begins with a plain ``BEGIN``, so a read never
    waits for the write lock."""
    return engine.execution_options(**{_READ_ONLY: True})


def write_session() -> Session:
    return Session(get_engine(), expire_on_commit=False)


def read_session(snapshot: bool = True) -> Session:
    """A session for reads. ``snapshot=False`` is for reads that need not see one common
    state: on PostgreSQL each statement then runs on its own (autocommit), which spares the
    BEGIN and ROLLBACK round trips; SQLite's deferred BEGIN costs nothing anyway."""
    engine = get_engine()
    options: dict[str, Any] = {_READ_ONLY: True}
    if not snapshot and engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return Session(engine.execution_options(**options), expire_on_commit=False)


class WritesStand(Exception):
    """A refusal whose writes so far must be committed before it goes out: a proposal found
    past its deadline is expired, a refused approval is audited. Raised inside a
    :func:`transaction` (or a group commit's savepoint), it commits what was written and
    the caller gets ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@contextmanager
def transaction() -> Iterator[Session]:
    """A write transaction: commits on success, rolls back on any exception except
    :class:`WritesStand`, which commits and raises the error it carries."""
    with write_session() as session:
        try:
            yield session
            session.commit()
        except WritesStand as kept:
            session.commit()
            raise kept.error from None
        except BaseException:
            session.rollback()
            raise
