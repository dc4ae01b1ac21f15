"""A BOLT12 offer per loan on real Core Lightning: shown on the loan page and the repayment card, paid by the
wallet node's `fetchinvoice` + `xpay` as a BOLT12 wallet pays, credited exactly once by the listener (matched
by `local_offer_id`), also when the payment arrived while the web server was down."""
from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select

from lightning.regtest import RegtestNetwork
from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.db.tables import invoices, loan_offers, repayments
from marketplace.db.verify import verify_ledger
from marketplace.settings import Settings
from tests.lightning_app.reach_support import BORROWER_NAME, STORY, active_loan
from tests.realnode.support import wait_for
from tests.web.support import TestClient, sign_in

pytestmark = pytest.mark.realnode
OFFER = re.compile(r"lno1[02-9ac-hj-np-z]+")


def pay_offer(network: RegtestNetwork, bolt12: str, amount_msat: int) -> str:
    """As a BOLT12 wallet: ask the offer's node for an invoice, pay it; the payment hash."""
    wallet = network.rpc("wallet")
    fetched = wallet.call("fetchinvoice", {"offer": bolt12, "amount_msat": amount_msat})
    paid = wallet.call("xpay", {"invstring": fetched["invoice"]})
    assert paid["amount_msat"] == amount_msat
    return hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest()


def repayment_count(database: Database, payment_hash: str) -> int:
    return database.read(lambda c: int(c.execute(select(func.count()).select_from(repayments).where(
        repayments.c.payment_hash == payment_hash)).scalar_one()))


def test_a_loans_offer_is_paid_by_a_bolt12_wallet_and_credited_once_even_with_the_web_server_down(
        real_settings: Settings, database: Database, realnet: RegtestNetwork) -> None:
    loan = active_loan(database, real_settings, realnet, "offer")  # type: ignore[arg-type]
    with TestClient(create_app(real_settings, database=database)) as client:
        assert sign_in(client, loan.borrower_email).status_code == 303
        page = client.get(f"/loans/{loan.loan_id}")
        found = OFFER.search(page.text)
        assert found is not None, "the loan page shows no offer"
        bolt12 = found.group(0)
        card = client.get(f"/loans/{loan.loan_id}/card")
        assert card.status_code == 200 and bolt12 in card.text and "LNURL1" in card.text
        # The offer is made once and kept: a second view shows the same one.
        assert bolt12 in client.get(f"/loans/{loan.loan_id}").text
        decoded = realnet.rpc("wallet").call("decode", {"string": bolt12})
        assert decoded["type"] == "bolt12 offer" and decoded["valid"]
        assert "offer_amount_msat" not in decoded  # any amount
        assert decoded["offer_description"].startswith(f"Microlend loan {loan.loan_id} repayment")
        assert BORROWER_NAME not in decoded["offer_description"] and "Rosa" not in decoded["offer_description"]
        assert STORY not in decoded["offer_description"]
        first = pay_offer(realnet, bolt12, 3_000_000)
        wait_for(lambda: repayment_count(database, first) == 1, 30)

    # The web server (and its listener) is down: the node alone takes the payment.
    second = pay_offer(realnet, bolt12, 2_500_000)
    assert repayment_count(database, second) == 0
    with TestClient(create_app(real_settings, database=database)):
        wait_for(lambda: repayment_count(database, second) == 1, 30)
    with TestClient(create_app(real_settings, database=database)):
        # A third start drains the same history again: still once each.
        wait_for(lambda: database.read(lambda c: c.execute(select(func.count()).select_from(invoices).where(
            invoices.c.label.like("microlend:offer:%"))).scalar_one()) == 2, 10)
    assert repayment_count(database, first) == 1 and repayment_count(database, second) == 1
    rows = database.read(lambda c: c.execute(select(repayments.c.received_msat, repayments.c.loan_id).where(
        repayments.c.payment_hash.in_([first, second]))).all())
    assert sorted(r.received_msat for r in rows) == [2_500_000, 3_000_000]
    assert {r.loan_id for r in rows} == {loan.loan_id}
    offer_id = database.read(lambda c: c.execute(select(loan_offers.c.offer_id).where(
        loan_offers.c.loan_id == loan.loan_id)).scalar_one())
    node_invoices = realnet.rpc("marketplace").listinvoices(offer_id=offer_id)["invoices"]
    assert {i["payment_hash"] for i in node_invoices if i["status"] == "paid"} == {first, second}
    assert database.read(verify_ledger).ok
