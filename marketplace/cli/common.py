"""What every subcommand shares: the options that feed Settings, and error reporting."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from marketplace.db import migrate
from marketplace.db.engine import Database

from marketplace.settings import Settings, SettingsError, settings_from_env


def settings_options() -> argparse.ArgumentParser:
    """A parent parser: flags that override MICROLEND_* environment variables."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (each overrides its MICROLEND_* variable)")
    group.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite file in the data dir)")
    group.add_argument("--data-dir", type=Path, help="where embedded data lives (default: ./data)")
    group.add_argument("--mode", choices=["embedded", "production"], help="default: embedded")
    return parent


def build_settings(args: argparse.Namespace, **extra: object) -> Settings:
    overrides = {
        "database_url": getattr(args, "database_url", None),
        "data_dir": getattr(args, "data_dir", None),
        "mode": getattr(args, "mode", None),
        **extra,
    }
    return settings_from_env(os.environ, overrides)


def fail(message: str, code: int = 1) -> int:
    print(f"microlend: error: {message}", file=sys.stderr)
    return code


@contextmanager
def current_database(settings: Settings) -> Iterator[Database]:
    """The configured database, refused (DatabaseBehind) unless its schema is current; disposed after."""
    database = Database(settings.database_url)
    try:
        migrate.ensure_current(database.engine)
        yield database
    finally:
        database.dispose()


def load_settings(args: argparse.Namespace, **extra: object) -> Settings | None:
    try:
        return build_settings(args, **extra)
    except SettingsError as exc:
        fail(str(exc), 2)
        return None
