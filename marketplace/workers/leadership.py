"""Only one app process runs the listener: a PostgreSQL advisory lock, or a file lock beside SQLite."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from marketplace.db.engine import Database

LISTENER_LOCK_KEY = 0x4D4C_4C53  # "MLLS"


class Leadership:
    """Try to become the listener's holder; hold until released or the process dies."""

    def __init__(self, database: Database, key: int = LISTENER_LOCK_KEY) -> None:
        self.database = database
        self.key = key
        self._conn: Connection | None = None
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self.database.is_sqlite:
            return self._try_file_lock()
        conn = self.database.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        conn.commit()
        if got:
            self._conn = conn  # the lock lives as long as this session
        else:
            conn.close()
        return got

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

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "Leadership":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
