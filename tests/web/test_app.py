"""The app factory and its lifespan: schema check, database ownership, background hooks."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from starlette.applications import Starlette

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.db.migrate import DatabaseBehind
from marketplace.settings import Settings
from marketplace.web.lifespan import background_task
from tests.web.support import TestClient


def test_refuses_to_start_on_an_unmigrated_database(settings: Settings, tmp_path: Path) -> None:
    empty = settings.replace(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(DatabaseBehind, match="microlend db upgrade"):
        with TestClient(create_app(empty)):
            pass


def test_opens_its_own_database_from_settings(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/").status_code == 200
        assert isinstance(client.app.state.database, Database)  # type: ignore[attr-defined]


def test_a_given_database_is_left_open(settings: Settings, database: Database) -> None:
    with TestClient(create_app(settings, database=database)) as client:
        assert client.app.state.database is database  # type: ignore[attr-defined]
    assert database.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar()) == 1


def test_lifespan_extras_run_after_the_database_is_ready(settings: Settings, database: Database) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def extra(app: Starlette) -> AsyncIterator[None]:
        events.append(f"start:{app.state.database is database}")
        yield
        events.append("stop")

    async def worker(app: Starlette) -> None:
        events.append("worker")
        await anyio.sleep_forever()

    app = create_app(settings, database=database, lifespan_extras=[extra, background_task(worker)])
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
    assert events == ["start:True", "worker", "stop"]
