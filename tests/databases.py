"""Fresh, migrated databases for tests: SQLite always, PostgreSQL when configured.

Migrations run once per session into a template; each test gets a copy (a file
copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL), so every test
starts from the real schema without paying for the migrations again.
"""
from __future__ import annotations

import shutil
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
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        pass


class PostgresTemplate:
    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(normalize_url(server_url))
        self.admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        self.template_name = f"mltest_tpl_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template_name}"'))
        engine = make_engine(self._url_for(self.template_name))
        migrate.upgrade(engine)
        engine.dispose()

    def _url_for(self, name: str) -> str:
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def new_url(self) -> str:
        name = f"mltest_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_name}"'))
        return self._url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template_name}" WITH (FORCE)'))
        self.admin.dispose()
