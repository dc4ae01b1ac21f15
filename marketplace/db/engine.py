"""Engine set-up and the transaction helpers every service uses.

SQLite: WAL, foreign keys on, and pysqlite's own BEGIN switched off so that a
transaction that writes starts with `BEGIN IMMEDIATE` — the write lock is taken
before anything is read, so two read-then-write transactions cannot both pass
a balance check. PostgreSQL (psycopg 3): READ COMMITTED plus row locks taken by
the repositories (`FOR UPDATE`), and a retry on serialization failures and
deadlocks (SQLSTATE 40001, 40P01).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}
_IMMEDIATE = "microlend_immediate"


def normalize_url(url: str) -> str:
    """Accept the usual postgres:// spellings and pin the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def discard(conn: Connection | None) -> None:
    """Throw away a held connection whose server session may be gone (its session locks with it); never raises."""
    if conn is None:
        return
    try:
        conn.invalidate()
        conn.close()
    except Exception:
        pass


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=kwargs.pop("pool_size", 8),
            max_overflow=kwargs.pop("max_overflow", 24),
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=kwargs.pop("pool_size", 8),
        max_overflow=kwargs.pop("max_overflow", 24),
        pool_pre_ping=True,
        **kwargs,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_IMMEDIATE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _is_retryable(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRY_SQLSTATES:
        return True
    # SQLite past its busy timeout: safe to retry the whole transaction.
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


class Database:
    """An engine plus the two ways in: a writing and a reading transaction."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """One transaction; commits on success, rolls back on any exception."""
        with self.engine.connect() as conn:
            if write and self.is_sqlite:
                conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                yield conn

    def run(self, work: Callable[[Connection], T], *, write: bool = True, attempts: int = 6) -> T:
        """Run `work` in one transaction, retrying it whole on serialization conflicts."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction(write=write) as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == attempts or not _is_retryable(exc):
                    raise
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Connection], T]) -> T:
        return self.run(work, write=False)

    def dispose(self) -> None:
        self.engine.dispose()
