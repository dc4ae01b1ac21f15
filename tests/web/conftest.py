"""The `client` fixture: the real app, lifespan running, on the test's database."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketplace.db.engine import Database
from marketplace.settings import Settings
from tests.web.support import TestClient, make_client


@pytest.fixture
def client(settings: Settings, database: Database) -> Iterator[TestClient]:
    with make_client(settings, database) as test_client:
        yield test_client
