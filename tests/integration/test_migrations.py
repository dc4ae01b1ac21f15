"""The migrations build exactly the schema the code declares, on each backend."""
from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from marketplace.db import migrate
from marketplace.db.engine import Database, make_engine
from marketplace.db.tables import metadata


def test_migrated_schema_matches_the_tables(database: Database) -> None:
    with database.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diffs == []


def test_migrations_are_at_head_and_seed_the_system_accounts(database: Database) -> None:
    assert migrate.current_revision(database.engine) == migrate.head_revision()
    migrate.ensure_current(database.engine)
    codes = database.read(lambda c: c.execute(text("SELECT code FROM accounts ORDER BY code")).scalars().all())
    assert codes == ["system:equity", "system:node_asset", "system:node_fees_paid", "system:operator_fees"]


def test_an_empty_database_is_refused_with_the_upgrade_command(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(migrate.DatabaseBehind, match="microlend db upgrade"):
        migrate.ensure_current(engine)
    migrate.upgrade(engine)
    migrate.ensure_current(engine)
    engine.dispose()


def test_a_database_behind_head_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(migrate.DatabaseBehind, match="revision 0000"):
        migrate.ensure_current(engine)
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    with database.transaction(write=False) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(Exception, match="(?i)foreign key"):
        with database.transaction() as conn:
            conn.execute(text(
                "INSERT INTO journal_lines (entry_id, position, account_id, amount_msat) VALUES (424242, 0, 1, 5)"
            ))
