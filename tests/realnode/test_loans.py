"""A loan on real Core Lightning: disbursed by the marketplace node's xpay, repaid by the wallet node's xpay
(next due, 1 sat, a partial, the payoff), through the LNURL pay code (`deschashonly`), and across a node restart."""
from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select

from lightning.regtest import RegtestNetwork
from marketplace.db import loans
from marketplace.db.engine import Database
from marketplace.db.tables import invoices, notes, outgoing_payments, repayments
from marketplace.db.verify import verify_ledger
from marketplace.settings import Settings
from tests.lightning_app.reach_support import LOAN_MSAT, active_loan, address_on_card
from tests.lightning_app.test_lnurl import ADDRESS, owed
from tests.realnode.support import bolt11_of, invoice_status, wait_for
from tests.web.support import TestClient, csrf_token, sign_in

pytestmark = pytest.mark.realnode


def repaid_total(database: Database, loan_id: int) -> int:
    return database.read(lambda c: int(c.execute(select(func.coalesce(func.sum(notes.c.received_msat), 0)).where(
        notes.c.loan_id == loan_id)).scalar_one()))


def credited_once(database: Database, payment_hash: str) -> bool:
    return database.read(lambda c: int(c.execute(select(func.count()).select_from(repayments).where(
        repayments.c.payment_hash == payment_hash)).scalar_one())) == 1


def ask_to_repay(client: TestClient, loan_id: int, amount_sat: str) -> int:
    """The borrower's repay form: an invoice for `amount_sat` (blank: the next due amount); its invoice id."""
    made = client.post(f"/loans/{loan_id}/repay", data={"csrf_token": csrf_token(client, f"/loans/{loan_id}"),
                                                        "amount_sat": amount_sat}, follow_redirects=False)
    assert made.status_code == 303, made.text
    return int(made.headers["location"].rsplit("/", 1)[1])


def test_a_loan_is_disbursed_and_repaid_in_every_way_through_the_listener(
        real_client: TestClient, database: Database, real_settings: Settings, realnet: RegtestNetwork) -> None:
    loan = active_loan(database, real_settings, realnet, "kinds")  # type: ignore[arg-type]
    paid_out = database.read(lambda c: c.execute(select(outgoing_payments).where(
        outgoing_payments.c.purpose == "disbursement", outgoing_payments.c.user_id == loan.borrower_id)).one())
    assert paid_out.status == "succeeded" and paid_out.amount_msat == LOAN_MSAT and paid_out.fee_msat == 0
    assert hashlib.sha256(bytes.fromhex(paid_out.payment_preimage)).hexdigest() == paid_out.payment_hash
    assert sign_in(real_client, loan.borrower_email).status_code == 303
    wallet = realnet.rpc("wallet")
    hashes = []
    payoff_before = owed(database, loan.loan_id)[0]
    for amount_sat in ("", "1", "7000"):  # the next due amount, one satoshi, a partial
        invoice_id = ask_to_repay(real_client, loan.loan_id, amount_sat)
        paid = wallet.call("xpay", {"invstring": bolt11_of(database, invoice_id)})
        hashes.append(hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest())
        wait_for(lambda h=hashes[-1]: credited_once(database, h), 30)  # type: ignore[misc]
    assert owed(database, loan.loan_id)[0] < payoff_before
    payoff = owed(database, loan.loan_id)[0]
    invoice_id = ask_to_repay(real_client, loan.loan_id, f"{payoff // 1000}.{payoff % 1000:03d}")
    wallet.call("xpay", {"invstring": bolt11_of(database, invoice_id)})
    wait_for(lambda: database.read(lambda c: loans.get_loan(c, loan.loan_id)).status == "repaid", 30)
    assert all(credited_once(database, h) for h in hashes)
    received = database.read(lambda c: int(c.execute(select(func.sum(repayments.c.received_msat)).where(
        repayments.c.loan_id == loan.loan_id)).scalar_one()))
    assert repaid_total(database, loan.loan_id) <= received
    assert database.read(verify_ledger).ok


def test_the_lnurl_pay_code_gives_a_deschashonly_invoice_xpay_pays(
        real_client: TestClient, database: Database, real_settings: Settings, realnet: RegtestNetwork) -> None:
    loan = active_loan(database, real_settings, realnet, "lnurl")  # type: ignore[arg-type]
    assert sign_in(real_client, loan.borrower_email).status_code == 303
    found = ADDRESS.fullmatch(address_on_card(real_client.get(f"/loans/{loan.loan_id}/card").text))
    assert found is not None
    real_client.cookies.clear()
    body = real_client.get(f"/.well-known/lnurlp/{found.group(1)}").json()
    _, next_due = owed(database, loan.loan_id)
    reply = real_client.get(body["callback"], params={"amount": str(next_due)})
    assert reply.status_code == 200, reply.text
    pr = reply.json()["pr"]
    # The real node decodes the invoice as committing to SHA-256 of the metadata, with no description.
    decoded = realnet.rpc("wallet").call("decode", {"string": pr})
    assert decoded["description_hash"] == hashlib.sha256(body["metadata"].encode()).hexdigest()
    assert "description" not in decoded and decoded["amount_msat"] == next_due
    assert json.loads(body["metadata"])
    paid = realnet.rpc("wallet").call("xpay", {"invstring": pr})
    payment_hash = hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest()
    wait_for(lambda: credited_once(database, payment_hash), 30)
    assert repaid_total(database, loan.loan_id) > 0
    assert database.read(verify_ledger).ok


def test_the_listener_resumes_after_the_marketplace_node_is_stopped_and_started(
        real_client: TestClient, database: Database, real_settings: Settings, realnet: RegtestNetwork) -> None:
    loan = active_loan(database, real_settings, realnet, "resume")  # type: ignore[arg-type]
    assert sign_in(real_client, loan.borrower_email).status_code == 303
    before_stop = ask_to_repay(real_client, loan.loan_id, "2000")
    realnet["marketplace"].stop()
    try:
        # Node down: a new invoice is a clear 503; at most a row the node never issued is left (no BOLT11).
        down = real_client.post(f"/loans/{loan.loan_id}/repay", data={
            "csrf_token": csrf_token(real_client, f"/loans/{loan.loan_id}"), "amount_sat": "1000"})
        assert down.status_code == 503, down.text
        assert "cannot be reached" in down.text
        newer = database.read(lambda c: c.execute(select(invoices.c.bolt11).where(
            invoices.c.id > before_stop)).all())
        assert all(row.bolt11 is None for row in newer)
    finally:
        realnet["marketplace"].start()
    realnet.wait_channel("wallet", "marketplace")
    realnet.forget_failures()
    # The invoice made before the stop is paid after the start: the listener finds it.
    bolt11 = bolt11_of(database, before_stop)
    paid = realnet.rpc("wallet").call("xpay", {"invstring": bolt11})
    payment_hash = hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest()
    wait_for(lambda: credited_once(database, payment_hash), 60)
    assert invoice_status(realnet, "marketplace", bolt11) == "paid"
    assert database.read(verify_ledger).ok
