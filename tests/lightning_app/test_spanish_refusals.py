"""A service refusal comes back in the reader's language, on a page and in the API (real dev node, real ledger).

Withdrawing more than the balance is refused by the ledger itself (InsufficientFunds, raised in
marketplace/db/ledger.py with its sentence marked for the catalog): the Spanish reader gets the
Spanish sentence with the amounts filled in, the English reader the English one, nothing moves.
"""
from __future__ import annotations

import time

import anyio

from marketplace.db.engine import Database
from marketplace.domain.journal import AccountKind
from marketplace.services import api_tokens
from tests.fixtures.devnode import DevNode
from tests.lightning_app.test_deposit_withdraw import balances, funded_lender, withdraw_form
from tests.web.support import TestClient

SPANISH = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}


def test_withdrawing_more_than_the_balance_is_refused_in_spanish(
        app_client: TestClient, database: Database, devnode_session: DevNode) -> None:
    user_id = funded_lender(app_client, database, "saldo@example.org", 20_000)
    wallet = devnode_session.adapter("wallet")
    too_much = anyio.run(wallet.create_invoice, 21_000_000, f"es-{time.time_ns()}", "es", 600).bolt11
    before = balances(database, user_id)

    app_client.headers.update(SPANISH)
    page = withdraw_form(app_client, too_much)
    assert page.status_code == 409  # type: ignore[attr-defined]
    assert '<html lang="es">' in page.text  # type: ignore[attr-defined]
    assert "No hay fondos suficientes en" in page.text  # type: ignore[attr-defined]
    assert "20,000 sat" in page.text and "Not enough funds" not in page.text  # type: ignore[attr-defined]

    token = api_tokens.create_token(database, user_id, "es bot").token
    app_client.cookies.clear()  # the token alone, as a program calls the API (no session, so no CSRF token)
    bearer = {"Authorization": f"Bearer {token}", **SPANISH}
    api = app_client.post("/api/v1/withdrawals", json={"bolt11": too_much}, headers=bearer)
    assert api.status_code == 409, api.text
    error = api.json()["error"]
    assert error["code"] == "insufficient_funds"
    assert error["message"].startswith("No hay fondos suficientes en"), error

    not_an_invoice = app_client.post("/api/v1/withdrawals", json={"bolt11": "hola"}, headers=bearer)
    assert not_an_invoice.status_code == 422, not_an_invoice.text
    assert not_an_invoice.json()["error"]["message"] == "Esto no es una factura Lightning: debería empezar por 'ln'."

    english = app_client.post("/api/v1/withdrawals", json={"bolt11": too_much},
                              headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})
    assert english.json()["error"]["message"].startswith("Not enough funds in")
    assert balances(database, user_id) == before
    assert before[AccountKind.USER_AVAILABLE] == 20_000_000
