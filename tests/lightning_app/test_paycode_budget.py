"""A loan's pay code in strangers' hands (issue 21, findings 2, 2b and 4), on the dev node and each database.

2: invoices made through the LNURL callback counted against the borrower's own
allowance (30 per 10 minutes): 24 callbacks from anyone kept the borrower's
pay form, API and wallet at 429, and a paid invoice never freed its place.
2b: the payRequest's metadata held the next due amount, so a repayment between
a wallet's payRequest and its callback made the invoice commit to metadata the
wallet never saw (and LUD-06 wallets refuse it).
4: the borrower's export showed the network address a payer's callback came from.
"""
from __future__ import annotations

import hashlib
import json
import re

import anyio
from sqlalchemy import select

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.db.tables import invoices, repayments
from marketplace.db.verify import verify_ledger
from marketplace.services import api_tokens
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.reach_support import active_loan, address_on_card
from tests.lightning_app.test_deposit_withdraw import wait_for
from tests.web.support import TestClient, csrf_token, sign_in

ADDRESS = re.compile(r"(loan-[a-z0-9]{10})@testserver")
PAYER = ("203.0.113.77", 5000)


def _handle(client: TestClient, loan_id: int, email: str) -> str:
    assert sign_in(client, email).status_code == 303
    found = ADDRESS.fullmatch(address_on_card(client.get(f"/loans/{loan_id}/card").text))
    assert found is not None
    return found.group(1)


def _stranger(settings: Settings, database: Database, devnode: DevNode, n: int) -> TestClient:
    """Someone else, at an address of their own, with the pay code (no session)."""
    app = create_app(settings, database=database, demo_wallet=devnode.adapter("wallet"))
    return TestClient(app, client=(f"198.51.100.{n}", 5000))


def _credited(database: Database, payment_hash: str) -> bool:
    return database.read(lambda c: c.execute(select(repayments.c.id).where(
        repayments.c.payment_hash == payment_hash)).first()) is not None


def _pay(devnode: DevNode, bolt11: str, description: str | None = None) -> None:
    args: dict[str, object] = {"bolt11": bolt11}
    if description is not None:
        args["description"] = description
    assert devnode.rpc("wallet").call("pay", args)["status"] == "complete"


def test_strangers_with_the_pay_code_cannot_stop_the_borrower_paying(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    """The reproduction: 30 callbacks (amount 1000+i) from other addresses; the borrower's page and API still work."""
    loan = active_loan(database, node_settings, devnode_session, "paycode")
    handle = _handle(app_client, loan.loan_id, loan.borrower_email)
    answers = []
    with _stranger(node_settings, database, devnode_session, 7) as stranger:
        for i in range(30):
            answers.append(stranger.get(f"/lnurlp/{handle}/callback", params={"amount": str(1000 + i)}))
        # Asking again for an amount that has an open invoice hands out that invoice, not a new one.
        again = stranger.get(f"/lnurlp/{handle}/callback", params={"amount": "1000"})
    statuses = [a.status_code for a in answers]
    budget = node_settings.paycode_open_per_loan
    assert statuses == [200] * budget + [429] * (30 - budget)
    refused = answers[-1].json()
    assert refused["status"] == "ERROR" and "pay code has" in refused["reason"]
    assert again.status_code == 200 and again.json()["pr"] == answers[0].json()["pr"]

    # The borrower's own pay form...
    form = app_client.post(f"/loans/{loan.loan_id}/repay",
                           data={"csrf_token": csrf_token(app_client, f"/loans/{loan.loan_id}"), "amount_sat": "2"},
                           follow_redirects=False)
    assert form.status_code == 303, form.text
    # ...and the API both still make invoices.
    token = api_tokens.create_token(database, loan.borrower_id, "my wallet script").token
    app_client.cookies.clear()
    api = app_client.post(f"/api/v1/loans/{loan.loan_id}/repayments", json={"amount_sat": 3},
                          headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 201, api.text
    made_by = database.read(lambda c: [r.made_by for r in c.execute(
        select(invoices.c.made_by).where(invoices.c.loan_id == loan.loan_id).order_by(invoices.c.id))])
    assert made_by == ["paycode"] * budget + ["owner", "owner"]


def test_a_paid_invoice_frees_its_place(
        database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    """'Pay or let one of them expire': the count is of open invoices, so paying one makes room."""
    settings = node_settings.replace(invoice_limit_count=2)
    loan = active_loan(database, settings, devnode_session, "frees")
    token = api_tokens.create_token(database, loan.borrower_id, "wallet").token
    auth = {"Authorization": f"Bearer {token}"}
    app = create_app(settings, database=database, demo_wallet=devnode_session.adapter("wallet"))
    with TestClient(app) as client:
        made = [client.post(f"/api/v1/loans/{loan.loan_id}/repayments", json={"amount_sat": 5 + n}, headers=auth)
                for n in range(2)]
        assert [m.status_code for m in made] == [201, 201]
        full = client.post(f"/api/v1/loans/{loan.loan_id}/repayments", json={"amount_sat": 9}, headers=auth)
        assert full.status_code == 429
        _pay(devnode_session, made[0].json()["bolt11"])
        wait_for(lambda: _credited(database, made[0].json()["payment_hash"]), 15)
        freed = client.post(f"/api/v1/loans/{loan.loan_id}/repayments", json={"amount_sat": 9}, headers=auth)
        assert freed.status_code == 201, freed.text


def test_the_invoice_commits_to_the_metadata_the_wallet_got_even_after_a_repayment_between(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    loan = active_loan(database, node_settings, devnode_session, "static")
    handle = _handle(app_client, loan.loan_id, loan.borrower_email)
    # The borrower pays an installment from the loan page in the meantime (signed in on app_client).
    form = app_client.post(f"/loans/{loan.loan_id}/repay",
                           data={"csrf_token": csrf_token(app_client, f"/loans/{loan.loan_id}"), "amount_sat": ""},
                           follow_redirects=False)
    assert form.status_code == 303, form.text
    own = database.read(lambda c: c.execute(select(invoices).where(
        invoices.c.loan_id == loan.loan_id).order_by(invoices.c.id.desc())).first())
    app_client.cookies.clear()

    wallet_got = app_client.get(f"/.well-known/lnurlp/{handle}").json()  # the wallet's payRequest
    _pay(devnode_session, own.bolt11)  # a repayment between payRequest and callback
    wait_for(lambda: _credited(database, own.payment_hash), 15)
    assert app_client.get(f"/.well-known/lnurlp/{handle}").json()["metadata"] == wallet_got["metadata"]

    reply = app_client.get(wallet_got["callback"], params={"amount": "5000"})
    assert reply.status_code == 200, reply.text
    decoded = anyio.run(devnode_session.adapter("wallet").decode, reply.json()["pr"])
    assert decoded.description_hash == hashlib.sha256(wallet_got["metadata"].encode()).hexdigest()
    _pay(devnode_session, reply.json()["pr"], wallet_got["metadata"])  # as a LUD-06 wallet: checked against h
    assert dict(json.loads(wallet_got["metadata"]))["text/plain"] == \
        f"Microlend loan {loan.loan_id}. Any amount at any time counts."
    assert database.read(verify_ledger).ok


def test_a_payers_network_address_is_in_nobodys_export(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    loan = active_loan(database, node_settings, devnode_session, "privacy4")
    handle = _handle(app_client, loan.loan_id, loan.borrower_email)
    payer = TestClient(create_app(node_settings, database=database), client=PAYER)
    with payer:
        assert payer.get(f"/lnurlp/{handle}/callback", params={"amount": "4000"}).status_code == 200
    export = app_client.get("/settings/export")
    assert export.status_code == 200
    assert PAYER[0] not in export.text
    assert all("address" not in row for row in export.json()["invoices"])
    # What is kept for the per-address caps is a keyed hash, not the address.
    kept = database.read(lambda c: list(c.execute(select(invoices.c.address)).scalars()))
    assert PAYER[0] not in kept and any(kept)



def test_in_production_pay_codes_need_the_public_url_not_the_host_header(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    """Issue 21, finding 7: with no MICROLEND_PUBLIC_URL the callback followed the Host header."""
    loan = active_loan(database, node_settings, devnode_session, "publicurl")
    handle = _handle(app_client, loan.loan_id, loan.borrower_email)
    production = node_settings.replace(mode="production")
    with TestClient(create_app(production, database=database, workers=False)) as client:
        refused = client.get(f"/.well-known/lnurlp/{handle}", headers={"Host": "evil.example"})
        assert refused.status_code == 503 and refused.json()["status"] == "ERROR"
        assert "MICROLEND_PUBLIC_URL" in refused.json()["reason"]
        assert client.get(f"/lnurlp/{handle}/callback", params={"amount": "1000"}).status_code == 503
    configured = production.replace(public_url="https://microlend.example")
    with TestClient(create_app(configured, database=database, workers=False)) as client:
        answer = client.get(f"/.well-known/lnurlp/{handle}", headers={"Host": "evil.example"})
        assert answer.status_code == 200
        assert answer.json()["callback"] == f"https://microlend.example/lnurlp/{handle}/callback"
