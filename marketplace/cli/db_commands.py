"""`microlend db upgrade` and `microlend ledger verify`."""
from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from marketplace.cli.common import current_database, fail, load_settings, settings_options
from marketplace.db import migrate
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parent = settings_options()
    db = subparsers.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_sub.required = True
    up = db_sub.add_parser("upgrade", parents=[parent], help="apply all migrations")
    up.set_defaults(func=upgrade)
    cur = db_sub.add_parser("current", parents=[parent], help="show the schema revision")
    cur.set_defaults(func=current)

    ledger = subparsers.add_parser("ledger", help="the double-entry ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="ACTION")
    ledger_sub.required = True
    verify = ledger_sub.add_parser(
        "verify", parents=[parent],
        help="recompute the hash chain, every entry's balance and every stored balance",
    )
    verify.set_defaults(func=verify_command)


def upgrade(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if settings is None:
        return 2
    database = Database(settings.database_url)
    try:
        before = migrate.current_revision(database.engine)
        migrate.upgrade(database.engine)
        after = migrate.current_revision(database.engine)
    except SQLAlchemyError as exc:
        return fail(f"cannot upgrade the database: {exc}")
    finally:
        database.dispose()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


def current(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if settings is None:
        return 2
    database = Database(settings.database_url)
    try:
        print(f"current {migrate.current_revision(database.engine)}, code expects {migrate.head_revision()}")
    finally:
        database.dispose()
    return 0


def verify_command(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if settings is None:
        return 2
    try:
        with current_database(settings) as database:
            report = database.read(verify_ledger)
    except migrate.DatabaseBehind as exc:
        return fail(str(exc))
    except SQLAlchemyError as exc:
        return fail(f"cannot read the ledger: {exc}")
    print(report.summary())
    if not report.ok:
        for problem in report.problems[1:]:
            print(f"  {problem}")
        return 1
    return 0
