"""Erasure and the person's unpaid invoices (issue 21, finding 3), on the dev node and each database.

The reproduction: an LNURL invoice for 5,000 sat, the loan paid off, the data
erased (200), then the old invoice paid: 5,000,000 msat received, 0 applied,
refunded to the erased account that nobody can sign in to. Now erasure deletes
every open invoice at the node first (`delinvoice`), so the old invoice cannot
be paid; and money that arrives for an erased person all the same (an invoice
the node still had) goes to the operator's refund queue, with its details.
"""
from __future__ import annotations

import anyio
import pytest
from pyln.client import RpcError
from sqlalchemy import select, update

from marketplace.db import ledger
from marketplace.db import loans as loan_rows
from marketplace.db.engine import Database
from marketplace.db.refunds import REFUNDS_ACCOUNT, due
from marketplace.db.tables import accounts, invoices, loans, repayments
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.services import loans as loan_service
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.reach_support import active_loan, address_on_card
from tests.lightning_app.test_deposit_withdraw import balances, wait_for
from tests.lightning_app.test_paycode_budget import ADDRESS
from tests.lightning_app.test_privacy import erase
from tests.web.support import TestClient, sign_in

OLD_MSAT = 5_000_000


def _repaid_with_an_old_invoice(client: TestClient, database: Database, settings: Settings, devnode: DevNode,
                                tag: str) -> tuple[int, int, str]:
    """A loan paid off, and an LNURL invoice for 5,000 sat made before: (loan, borrower, the old bolt11)."""
    loan = active_loan(database, settings, devnode, tag)
    assert sign_in(client, loan.borrower_email).status_code == 303
    found = ADDRESS.fullmatch(address_on_card(client.get(f"/loans/{loan.loan_id}/card").text))
    assert found is not None
    old = client.get(f"/lnurlp/{found.group(1)}/callback", params={"amount": str(OLD_MSAT)})
    assert old.status_code == 200, old.text
    payoff = database.read(lambda c: loan_rows.loan_state(c, loan_rows.get_loan(c, loan.loan_id))
                           .payoff_msat(loan_service.utc_today()))
    whole = anyio.run(loan_service.repayment_invoice, database, devnode.adapter("marketplace"), settings,
                      loan.borrower_id, loan.loan_id, payoff)
    assert whole.bolt11 is not None
    anyio.run(devnode.adapter("wallet").pay, whole.bolt11, None, 10_000, 10)
    wait_for(lambda: database.read(lambda c: c.execute(select(loans.c.status).where(loans.c.id == loan.loan_id))
                                   .scalar_one()) == "repaid", 15)
    return loan.loan_id, loan.borrower_id, str(old.json()["pr"])


def test_erasure_cancels_the_old_invoice_at_the_node(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    loan_id, borrower_id, old = _repaid_with_an_old_invoice(app_client, database, node_settings, devnode_session,
                                                            "erase-cancel")
    done = erase(app_client, "ERASE")
    assert done.status_code == 200 and "Your data was erased" in done.text
    metadata = database.read(lambda c: c.execute(select(invoices.c.description).where(invoices.c.bolt11 == old))
                             .scalar_one())
    with pytest.raises(RpcError) as refused:
        devnode_session.rpc("wallet").call("pay", {"bolt11": old, "description": metadata})
    assert "incorrect_or_unknown_payment_details" in str(refused.value)  # the node no longer knows it
    assert database.read(lambda c: c.execute(select(invoices.c.status).where(invoices.c.bolt11 == old))
                         .scalar_one()) == "expired"
    assert database.read(lambda c: c.execute(select(repayments.c.id).where(
        repayments.c.loan_id == loan_id, repayments.c.received_msat == OLD_MSAT)).first()) is None
    assert balances(database, borrower_id)[AccountKind.USER_AVAILABLE] == 0
    assert database.read(verify_ledger).ok


def test_money_that_arrives_for_an_erased_person_goes_to_the_operators_refund_queue(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    """The node still had the invoice (as if it had lost the cancellation): the money is reachable."""
    loan_id, borrower_id, old = _repaid_with_an_old_invoice(app_client, database, node_settings, devnode_session,
                                                            "erase-refund")
    database.run(lambda c: c.execute(update(invoices).where(invoices.c.bolt11 == old).values(status="expired")))
    done = erase(app_client, "ERASE")
    assert done.status_code == 200 and "Your data was erased" in done.text
    metadata = database.read(lambda c: c.execute(select(invoices.c.description).where(invoices.c.bolt11 == old))
                             .scalar_one())
    assert devnode_session.rpc("wallet").call("pay", {"bolt11": old, "description": metadata})["status"] == "complete"
    wait_for(lambda: bool(database.read(due)), 15)
    [refund] = database.read(due)
    row = database.read(lambda c: c.execute(select(invoices).where(invoices.c.bolt11 == old)).one())
    assert (refund.amount_msat, refund.payment_hash, refund.label, refund.loan_id, refund.invoice_id) == (
        OLD_MSAT, row.payment_hash, row.label, loan_id, row.id)
    held = database.read(lambda c: c.execute(select(accounts.c.kind, accounts.c.balance_msat).where(
        accounts.c.id == ledger.account_id(c, REFUNDS_ACCOUNT))).one())
    assert (held.kind, held.balance_msat) == ("refunds_due", OLD_MSAT)
    assert balances(database, borrower_id)[AccountKind.USER_AVAILABLE] == 0
    assert database.read(verify_ledger).ok
