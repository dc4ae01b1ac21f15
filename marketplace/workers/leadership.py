"""Only one app process runs the background workers: a PostgreSQL advisory lock, or a file lock beside SQLite.

PostgreSQL: `pg_try_advisory_lock` on a connection kept for as long as the
lock is held; the server drops the lock the moment that session ends (the
process exited, was killed, or lost its connection).

SQLite: `flock` on `<database file>.listener.lock`; the kernel drops it when the
holder's descriptor closes, which includes the process dying. Several
processes on one SQLite file work this way (WAL, `BEGIN IMMEDIATE` and a 30 s
busy timeout serialize their writes); exactly one of them runs the workers.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from marketplace.db.engine import Database, discard

LISTENER_LOCK_KEY = 0x4D4C_4C53  # "MLLS"


class Leadership:
    """Try to become the workers' holder; hold until released or the process dies."""

    def __init__(self, database: Database, key: int = LISTENER_LOCK_KEY) -> None:
        self.database = database
        self.key = key
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.database.is_sqlite:
            return self._try_file_lock()
        conn = self.database.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn  # the lock lives as long as this session
        else:
            conn.close()
        return got

    def still_held(self) -> bool:
        """Whether the lock is provably still ours (PostgreSQL: the session answers and shows it)."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            found = self._conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                "AND pid = pg_backend_pid() AND classid = 0 AND objid = CAST(:k AS oid)"), {"k": self.key}).scalar()
            self._conn.commit()
            return bool(found)
        except Exception:
            self._drop()
            return False

    def _try_file_lock(self) -> bool:
        database_path = self.database.engine.url.database or "memory"
        path = Path(f"{database_path}.listener.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _drop(self) -> None:
        discard(self._conn)
        self._conn = None

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            except Exception:
                pass  # a lost session has already dropped the lock
            finally:
                self._drop()
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "Leadership":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
