"""Alembic, driven from code: upgrade, and the start-up check that refuses a stale schema."""
from __future__ import annotations

from pathlib import Path

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
    config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


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
