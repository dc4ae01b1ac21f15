"""A lender deposits by paying with the demo wallet, then withdraws to a wallet invoice.

Everything is real: the ASGI app with its lifespan (listener and reconciler
running), the database, pyln over unix sockets, and the dev node.
"""
from __future__ import annotations

import re
import time

import anyio
import pytest

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from tests.fixtures.devnode import DevNode
from tests.web.support import TestClient, csrf_token, sign_up

_AVAILABLE = re.compile(r'id="balance-available">([^<]*)<')


def wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def user_id_of(database: Database, email: str) -> int:
    return database.read(lambda c: int(c.exec_driver_sql(
        "SELECT id FROM users WHERE email = ?" if database.is_sqlite else "SELECT id FROM users WHERE email = %s",
        (email,)).scalar_one()))


def balances(database: Database, user_id: int) -> dict[AccountKind, int]:
    return database.read(lambda c: ledger.user_balances(c, user_id))


def deposit(client: TestClient, amount_sat: str) -> int:
    response = client.post("/deposit", data={"csrf_token": csrf_token(client, "/deposit"), "amount_sat": amount_sat},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_deposit_with_the_demo_wallet_then_withdraw(app_client: TestClient, database: Database,
                                                    devnode_session: DevNode) -> None:
    assert sign_up(app_client, "lena@example.org").status_code == 303
    user_id = user_id_of(database, "lena@example.org")
    invoice_id = deposit(app_client, "50,000")

    page = app_client.get(f"/deposit/{invoice_id}")
    assert page.status_code == 200
    assert "lnbcrt500u1" in page.text and "<svg" in page.text
    assert "Pay with the demo wallet" in page.text
    assert 'data-live-src="/deposit/%d/events?since=unpaid"' % invoice_id in page.text  # server-sent events

    pay = app_client.post(f"/demo-wallet/pay/{invoice_id}", data={"csrf_token": csrf_token(app_client, "/deposit")},
                          follow_redirects=False)
    assert pay.status_code == 303
    wait_for(lambda: balances(database, user_id)[AccountKind.USER_AVAILABLE] == 50_000_000, 15)
    status = app_client.get(f"/deposit/{invoice_id}/status")
    assert "Paid." in status.text and "hx-trigger" not in status.text
    assert _AVAILABLE.search(status.text).group(1) == "50,000 sat"  # type: ignore[union-attr]

    wallet = devnode_session.adapter("wallet")
    target = anyio.run(wallet.create_invoice, 20_000_000, f"withdraw-test-{time.time_ns()}", "to my wallet", 600)
    result = app_client.post("/withdraw", data={"csrf_token": csrf_token(app_client, "/withdraw"),
                                                "bolt11": target.bolt11, "amount_sat": ""})
    assert result.status_code == 200, result.text
    assert "Sent." in result.text
    after = balances(database, user_id)
    assert after[AccountKind.USER_PENDING_OUT] == 0
    assert after[AccountKind.USER_AVAILABLE] == 30_000_000  # the dev node routes a direct channel for free
    assert anyio.run(wallet.lookup_invoice, target.label).status.value == "paid"  # type: ignore[union-attr]
    assert database.read(verify_ledger).ok


@pytest.mark.parametrize("bolt11, amount, message", [
    ("not an invoice", "", "not a Lightning invoice"),
    ("lnbcrt1qqqqqqqq", "", "could not be read"),
])
def test_bad_withdrawal_invoices_are_refused_and_change_nothing(
        app_client: TestClient, database: Database, bolt11: str, amount: str, message: str) -> None:
    sign_up(app_client, "wanda@example.org")
    user_id = user_id_of(database, "wanda@example.org")
    before = balances(database, user_id)
    response = app_client.post("/withdraw", data={"csrf_token": csrf_token(app_client, "/withdraw"),
                                                  "bolt11": bolt11, "amount_sat": amount})
    assert response.status_code == 422
    assert message in response.text
    assert balances(database, user_id) == before


def _foreign_invoice(currency: str, amount_msat: int | None = 1_000_000, created_at: int | None = None,
                     expiry_s: int = 3600) -> str:
    import hashlib
    import os

    from lightning.devnode.issuer import issue

    return issue(private_key_hex=os.urandom(32).hex(), currency=currency, amount_msat=amount_msat,
                 description="someone else's", payment_hash=hashlib.sha256(os.urandom(32)).hexdigest(),
                 payment_secret=os.urandom(32).hex(), created_at=created_at or int(time.time()), expiry_s=expiry_s)


def funded_lender(client: TestClient, database: Database, email: str, amount_sat: int) -> int:
    sign_up(client, email)
    user_id = user_id_of(database, email)
    invoice_id = deposit(client, str(amount_sat))
    client.post(f"/demo-wallet/pay/{invoice_id}", data={"csrf_token": csrf_token(client, "/deposit")})
    wait_for(lambda: balances(database, user_id)[AccountKind.USER_AVAILABLE] == amount_sat * 1000, 15)
    return user_id


def withdraw_form(client: TestClient, bolt11: str, amount: str = "") -> object:
    return client.post("/withdraw", data={"csrf_token": csrf_token(client, "/withdraw"), "bolt11": bolt11,
                                          "amount_sat": amount})


def test_every_bad_withdrawal_is_refused_with_its_reason(app_client: TestClient, database: Database,
                                                        devnode_session: DevNode) -> None:
    user_id = funded_lender(app_client, database, "bad@example.org", 30_000)
    wallet = devnode_session.adapter("wallet")
    carol = devnode_session.adapter("carol")

    def wallet_invoice(amount_msat: int) -> str:
        made = anyio.run(wallet.create_invoice, amount_msat, f"w-{time.time_ns()}", "w", 600)
        return made.bolt11

    amountless = anyio.run(wallet.call, "invoice", {"amount_msat": "any", "label": f"any-{time.time_ns()}",
                                                    "description": "any", "expiry": 600})["bolt11"]
    paid_by_someone_else = wallet_invoice(1_000_000)
    anyio.run(carol.pay, paid_by_someone_else, None, 10_000, 10)
    own_node = anyio.run(devnode_session.adapter("marketplace").create_invoice, 1_000_000,
                         f"own-{time.time_ns()}", "own", 600).bolt11
    cases = [
        (_foreign_invoice("bc"), "", 422, "for bitcoin, but this marketplace runs on regtest"),
        (_foreign_invoice("tb"), "", 422, "for testnet"),
        (_foreign_invoice("bcrt", created_at=int(time.time()) - 7200), "", 422, "expired"),
        (amountless, "", 422, "no amount: enter the amount"),
        (amountless, "0", 422, "more than 0"),
        (wallet_invoice(31_000_000), "", 409, "Not enough funds"),
        (own_node, "", 422, "own node"),
    ]
    before = balances(database, user_id)
    for bolt11, amount, status, message in cases:
        response = withdraw_form(app_client, bolt11, amount)
        assert response.status_code == status, (message, response.text)  # type: ignore[attr-defined]
        assert message in response.text, (message, response.text)  # type: ignore[attr-defined]
        assert balances(database, user_id) == before

    failed = withdraw_form(app_client, paid_by_someone_else)
    assert "The payment failed and nothing left your balance" in failed.text  # type: ignore[attr-defined]
    assert balances(database, user_id) == before

    ok = wallet_invoice(5_000_000)
    assert "Sent." in withdraw_form(app_client, ok).text  # type: ignore[attr-defined]
    again = withdraw_form(app_client, ok)
    assert again.status_code == 409 and "already used" in again.text  # type: ignore[attr-defined]
    assert balances(database, user_id)[AccountKind.USER_AVAILABLE] == 25_000_000
    assert database.read(verify_ledger).ok


def test_a_node_that_is_down_is_a_clear_error_and_changes_nothing(
        settings: object, database: Database, tmp_path: object) -> None:
    from marketplace.app import create_app
    from marketplace.settings import Settings

    assert isinstance(settings, Settings)
    down = settings.replace(cln_rpc=str(tmp_path) + "/no-node/lightning-rpc")  # type: ignore[operator]
    with TestClient(create_app(down, database=database)) as client:
        sign_up(client, "down@example.org")
        user_id = user_id_of(database, "down@example.org")
        response = client.post("/deposit", data={"csrf_token": csrf_token(client, "/deposit"), "amount_sat": "1000"})
        assert response.status_code == 503
        assert "cannot be reached" in response.text
        response = withdraw_form(client, _foreign_invoice("bcrt"))
        assert response.status_code == 503  # type: ignore[attr-defined]
        assert balances(database, user_id) == {k: 0 for k in balances(database, user_id)}


def test_operator_sees_the_node_channels_and_listener(app_client: TestClient, database: Database,
                                                      node_settings: object, devnode_session: DevNode) -> None:
    from marketplace.services.accounts import create_user
    from tests.web.support import PASSWORD, sign_in

    create_user(database, node_settings, "op@example.org", PASSWORD, "operator")  # type: ignore[arg-type]
    assert sign_in(app_client, "op@example.org").status_code == 303
    info = anyio.run(devnode_session.adapter("marketplace").node_info)
    page = app_client.get("/operator")
    assert page.status_code == 200
    assert info.id in page.text and "regtest" in page.text
    assert "CHANNELD_NORMAL" in page.text
    assert "payment listener" in page.text


def test_production_mode_has_no_demo_wallet(node_settings: object, database: Database,
                                            devnode_session: DevNode) -> None:
    from marketplace.app import create_app
    from marketplace.settings import Settings

    assert isinstance(node_settings, Settings)
    production = node_settings.replace(mode="production")
    app = create_app(production, database=database, demo_wallet=devnode_session.adapter("wallet"), workers=False)
    with TestClient(app) as client:
        sign_up(client, "prod@example.org")
        invoice_id = deposit(client, "1000")
        page = client.get(f"/deposit/{invoice_id}")
        assert page.status_code == 200 and "lnbcrt10u1" in page.text
        assert "demo wallet" not in page.text
        response = client.post(f"/demo-wallet/pay/{invoice_id}", data={"csrf_token": csrf_token(client, "/deposit")})
        assert response.status_code == 404
