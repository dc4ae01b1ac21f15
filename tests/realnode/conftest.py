"""The whole app (lifespan, listener, reconciler) on the test's database and the session's real regtest network.

One network per test run (tests/fixtures/realnode.py `realnet`), a fresh database per test: the marketplace's
invoice labels carry a UUID, so each test's listener steps over the invoices earlier tests left on the node.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from lightning.regtest import RegtestNetwork
from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.settings import Settings
from tests.web.support import TestClient


@pytest.fixture
def real_settings(settings: Settings, realnet: RegtestNetwork) -> Settings:
    # Short waits so a restarted node is noticed within seconds; xpay gives up on a route after 10 s.
    return settings.replace(cln_rpc=realnet.rpc_path("marketplace"), listener_wait_s=2, reconcile_every_s=1,
                            pay_retry_for_s=10)


@pytest.fixture
def real_client(real_settings: Settings, database: Database, realnet: RegtestNetwork) -> Iterator[TestClient]:
    # The demo wallet is the wallet node: "Pay with the demo wallet" is its xpay over a real channel.
    app = create_app(real_settings, database=database, demo_wallet=realnet.adapter("wallet"))
    with TestClient(app) as client:
        yield client
