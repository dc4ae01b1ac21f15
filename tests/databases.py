"""Fresh, migrated databases for tests: SQLite always, PostgreSQL when configured.

Migrations run once per session into a template; each test gets a copy (a file
copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL), so every test
starts from the real schema without paying for the migrations again.
"""
from __future__ import annotations

import queue
import shutil
import threading
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from marketplace.db import migrate
from marketplace.db.engine import make_engine, normalize_url


class SqliteTemplate:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.sqlite3"
        engine = make_engine(f"sqlite:///{self.template}")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()

    def new_url(self) -> str:
        target = self.directory / f"db-{uuid.uuid4().hex[:12]}.sqlite3"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database or "")
        # The database, its WAL files, and the lock files the listener's leadership and the payment locks keep
        # beside it (marketplace/workers).
        for suffix in ("", "-wal", "-shm", ".listener.lock", ".payments.lock"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        pass


class PostgresTemplate:
    """Copies of a migrated template, made ahead by a thread: `CREATE DATABASE ... TEMPLATE` takes ~0.2 s,
    mostly the server writing and syncing, which overlaps with the test that runs meanwhile."""

    AHEAD = 2

    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(normalize_url(server_url))
        self.admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        self.template_name = f"mltest_tpl_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template_name}"'))
        engine = make_engine(self._url_for(self.template_name))
        migrate.upgrade(engine)
        engine.dispose()
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._room = threading.Semaphore(self.AHEAD)
        self._closing = threading.Event()
        self._maker = threading.Thread(target=self._make_ahead, name="pg-template-copies", daemon=True)
        self._maker.start()
        self._to_drop: queue.Queue[str | None] = queue.Queue()
        self._dropper = threading.Thread(target=self._drop_behind, name="pg-template-drops", daemon=True)
        self._dropper.start()

    def _url_for(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def _make_ahead(self) -> None:
        while True:
            self._room.acquire()
            if self._closing.is_set():
                return
            name = f"mltest_{uuid.uuid4().hex[:12]}"
            try:
                with self.admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_name}"'))
                    # Commits return before the WAL reaches the disk: only a crash of the PostgreSQL server
                    # itself could lose one, and no test crashes it (the crash tests kill the app and the node).
                    conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
            except BaseException as exc:  # handed to the test that asks next, which fails with it
                self._ready.put(exc)
                return
            self._ready.put(name)

    def new_url(self) -> str:
        made = self._ready.get(timeout=120)
        if isinstance(made, BaseException):
            self._ready.put(made)  # every later test fails the same way, at once
            raise RuntimeError("could not copy the test database template") from made
        self._room.release()
        return self._url_for(made)

    def drop(self, url: str) -> None:
        """Dropped by a thread too: the test's teardown does not wait for it (close does)."""
        self._to_drop.put(make_url(url).database or "")

    def _drop_behind(self) -> None:
        while (name := self._to_drop.get()) is not None:
            try:
                self._drop_now(name)
            except Exception as exc:  # a copy left behind is only disk; the run goes on
                print(f"could not drop test database {name}: {exc}")

    def _drop_now(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self._closing.set()
        self._room.release()
        self._maker.join(timeout=120)
        self._to_drop.put(None)
        self._dropper.join(timeout=300)
        while not self._ready.empty():
            made = self._ready.get()
            if isinstance(made, str):
                self._drop_now(made)
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template_name}" WITH (FORCE)'))
        self.admin.dispose()
