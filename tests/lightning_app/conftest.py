"""The whole app (lifespan, listener, reconciler) on the test's database and a real dev node."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.web.support import TestClient


@pytest.fixture
def node_settings(settings: Settings, devnode_session: DevNode) -> Settings:
    return settings.replace(cln_rpc=devnode_session.rpc_path("marketplace"), listener_wait_s=2,
                            reconcile_every_s=1, pay_retry_for_s=5)


@pytest.fixture
def app_client(node_settings: Settings, database: Database, devnode_session: DevNode) -> Iterator[TestClient]:
    app = create_app(node_settings, database=database, demo_wallet=devnode_session.adapter("wallet"))
    with TestClient(app) as client:
        yield client
