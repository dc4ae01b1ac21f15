"""One real server per backend per module (see support.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketplace.db.engine import Database
from tests.conftest import BACKENDS
from tests.databases import PostgresTemplate, SqliteTemplate
from tests.fixtures.devnode import DevNode
from tests.races.support import RaceRig, settings_for, start_server


@pytest.fixture(scope="module", params=BACKENDS)
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        devnode_session: DevNode) -> Iterator[RaceRig]:
    name = "sqlite_template" if request.param == "sqlite" else "postgres_template"
    template: SqliteTemplate | PostgresTemplate = request.getfixturevalue(name)
    url = template.new_url()
    tmp_path = tmp_path_factory.mktemp(f"race-{request.param}")
    database = Database(url)
    app = start_server(tmp_path, url, devnode_session)
    try:
        yield RaceRig(database, settings_for(tmp_path, url, devnode_session), app, devnode_session)
    finally:
        app.stop()
        database.dispose()
        template.drop(url)
