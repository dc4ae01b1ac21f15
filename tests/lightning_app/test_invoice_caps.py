"""Open invoices are capped per network address and in all, besides the per-user rate (issue 10).

"3 fresh accounts made 90 deposit invoices in seconds": the 30-per-10-minutes
limit was per user only. Now every account on one address shares one cap of
open (unpaid, unexpired) invoices, and the marketplace has a cap in all.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.db.tables import invoices
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.web.support import TestClient, count, csrf_token, sign_up

FLOODER = ("198.51.100.90", 7000)


def _client(settings: Settings, database: Database, devnode: DevNode, address: tuple[str, int]) -> TestClient:
    app = create_app(settings, database=database, demo_wallet=devnode.adapter("wallet"), workers=False)
    return TestClient(app, client=address)


def _deposit(client: TestClient, amount_sat: str = "1000") -> object:
    return client.post("/deposit", data={"csrf_token": csrf_token(client, "/deposit"), "amount_sat": amount_sat},
                       follow_redirects=False)


@pytest.fixture
def capped(node_settings: Settings) -> Settings:
    """The shipped caps (the per-user limit too), on the dev node."""
    shipped = Settings()
    return node_settings.replace(invoice_unpaid_per_address=shipped.invoice_unpaid_per_address,
                                 invoice_unpaid_total=shipped.invoice_unpaid_total,
                                 invoice_limit_count=shipped.invoice_limit_count)


@pytest.fixture
def flooders(capped: Settings, database: Database, devnode_session: DevNode) -> Iterator[list[TestClient]]:
    """Three fresh lender accounts from one address."""
    made = []
    try:
        for n in range(3):
            client = _client(capped, database, devnode_session, FLOODER).__enter__()
            made.append(client)
            assert sign_up(client, f"flood{n}@example.org").status_code == 303
        yield made
    finally:
        for client in made:
            client.__exit__(None, None, None)


def test_three_fresh_accounts_cannot_make_ninety_invoices(capped: Settings, database: Database,
                                                          flooders: list[TestClient],
                                                          devnode_session: DevNode) -> None:
    per_address = capped.invoice_unpaid_per_address
    assert per_address == 50
    made = refused = 0
    for n in range(90):
        response = _deposit(flooders[n % 3])
        if response.status_code == 303:  # type: ignore[attr-defined]
            made += 1
        else:
            assert response.status_code == 429, response.text  # type: ignore[attr-defined]
            assert "unpaid invoices from your network address" in response.text  # type: ignore[attr-defined]
            assert 1 <= int(response.headers["Retry-After"]) <= capped.invoice_expiry_s  # type: ignore[attr-defined]
            refused += 1
    assert made == per_address and refused == 90 - per_address
    assert count(database, invoices) == per_address  # a refusal writes nothing and asks the node for nothing
    # Someone else, elsewhere, is not held up by the flood.
    with _client(capped, database, devnode_session, ("192.0.2.7", 7000)) as other:
        assert sign_up(other, "other@example.org").status_code == 303
        assert _deposit(other).status_code == 303  # type: ignore[attr-defined]
    # Paid or expired invoices no longer count: the address may ask again.
    database.run(lambda c: c.execute(update(invoices).where(invoices.c.id <= 10).values(status="paid")))
    assert _deposit(flooders[0]).status_code == 303  # type: ignore[attr-defined]


def test_the_api_shares_the_cap_and_says_so_in_json(capped: Settings, database: Database,
                                                    flooders: list[TestClient]) -> None:
    # Two accounts fill the address's cap through the pages; the third account's API call is refused.
    for n in range(capped.invoice_unpaid_per_address):
        assert _deposit(flooders[1 + n % 2]).status_code == 303  # type: ignore[attr-defined]
    client = flooders[0]
    response = client.post("/api/v1/deposits", json={"amount_sat": 1000},
                           headers={"X-CSRF-Token": csrf_token(client, "/dashboard")})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_open_invoices"
    assert int(response.headers["Retry-After"]) >= 1


def test_the_marketplace_wide_cap(capped: Settings, database: Database, devnode_session: DevNode) -> None:
    settings = capped.replace(invoice_unpaid_total=3)
    clients = []
    try:
        for n in range(4):
            client = _client(settings, database, devnode_session, (f"203.0.113.{n + 1}", 7000)).__enter__()
            clients.append(client)
            assert sign_up(client, f"many{n}@example.org").status_code == 303
        assert [_deposit(c).status_code for c in clients[:3]] == [303, 303, 303]  # type: ignore[attr-defined]
        refused = _deposit(clients[3])
        assert refused.status_code == 429  # type: ignore[attr-defined]
        assert "as many unpaid invoices as it takes at once" in refused.text  # type: ignore[attr-defined]
        assert "Retry-After" in refused.headers  # type: ignore[attr-defined]
        assert count(database, invoices) == 3
    finally:
        for client in clients:
            client.__exit__(None, None, None)
