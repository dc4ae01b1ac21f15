"""Alembic, driven from code: upgrade, and the start-up check that refuses a stale schema."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from marketplace.db.engine import normalize_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseBehind(Exception):
    """The schema is older than the code; the message says what to run."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision` in one transaction.

    On SQLite, changing a constraint rebuilds the table; with foreign keys
    enforced that copy cannot drop a table other rows point at. So the check
    is off for the migration (SQLite allows that only outside a transaction)
    and the whole database is checked before the commit instead.
    """
    config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection  # a pragma outside any transaction, on this connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"The migration would leave rows pointing nowhere: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_current(engine: Engine) -> None:
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        where = "an empty database" if current is None else f"revision {current}"
        raise DatabaseBehind(
            f"The database is at {where} but this version of Microlend needs revision {head}. "
            "Run `microlend db upgrade` (make run does it for you)."
        )
