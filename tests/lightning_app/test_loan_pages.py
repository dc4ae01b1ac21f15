"""Loan pages on the dev node: request, fund, disburse to a wallet invoice, repay with the demo wallet.

Everything is real: the ASGI app with its lifespan (listener and reconciler),
the database, pyln over unix sockets, and the dev node's wallet.
"""
from __future__ import annotations

import re
import time

import anyio
import httpx

from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from tests.fixtures.devnode import DevNode
from tests.lightning_app.test_deposit_withdraw import (
    _foreign_invoice, balances, funded_lender, user_id_of, wait_for)
from tests.web.support import TestClient, csrf_token, sign_in, sign_up

LOAN_SAT = 20_000
REQUEST = {"amount_sat": str(LOAN_SAT), "purpose": "transport", "rate": "24", "count": "4", "frequency": "weekly",
           "method": "annuity", "story": "A bicycle cart to carry vegetables to the market."}


def post(client: TestClient, path: str, data: dict[str, str], page: str) -> httpx.Response:
    response: httpx.Response = client.post(path, data={"csrf_token": csrf_token(client, page), **data},
                                           follow_redirects=False)
    return response


def funded_loan(client: TestClient, database: Database, tag: str) -> tuple[int, int, list[int]]:
    """A borrower's request funded by two lenders through the pages; the borrower is signed in at the end."""
    lenders = [funded_lender(client, database, f"{tag}-l{i}@example.org", 15_000) for i in (1, 2)]
    assert sign_up(client, f"{tag}-b@example.org", role="borrower", display_name="Bo").status_code == 303
    borrower = user_id_of(database, f"{tag}-b@example.org")
    made = post(client, "/loans/new", REQUEST, "/loans/new")
    assert made.status_code == 303, made.text
    loan_id = int(made.headers["location"].rsplit("/", 1)[1])
    for i, amount in ((1, "12000"), (2, "8000")):
        assert sign_in(client, f"{tag}-l{i}@example.org").status_code == 303
        funded = post(client, f"/loans/{loan_id}/fund", {"amount_sat": amount}, f"/loans/{loan_id}")
        assert funded.status_code == 303, funded.text
    assert sign_in(client, f"{tag}-b@example.org").status_code == 303
    return loan_id, borrower, lenders


def wallet_invoice(devnode: DevNode, amount_msat: int) -> str:
    wallet = devnode.adapter("wallet")
    return anyio.run(wallet.create_invoice, amount_msat, f"loan-{time.time_ns()}", "d", 600).bolt11


def test_a_disbursement_invoice_for_the_wrong_amount_or_network_is_refused(
        app_client: TestClient, database: Database, devnode_session: DevNode) -> None:
    loan_id, borrower, lenders = funded_loan(app_client, database, "bad")
    page = app_client.get(f"/loans/{loan_id}")
    assert "funded, waiting for disbursement" in page.text and "microlend wallet invoice 20000" in page.text
    before = [balances(database, lender) for lender in lenders]
    assert before[0][AccountKind.USER_RESERVED] == 12_000_000
    cases = [
        (wallet_invoice(devnode_session, LOAN_SAT * 1000 - 1000), "asks for 19,999 sat but the loan is 20,000 sat"),
        (wallet_invoice(devnode_session, LOAN_SAT * 1000 + 1000), "make an invoice for exactly the loan amount"),
        (_foreign_invoice("bc", LOAN_SAT * 1000), "for bitcoin, but this marketplace runs on regtest"),
        ("not an invoice", "not a Lightning invoice"),
    ]
    for bolt11, message in cases:
        response = post(app_client, f"/loans/{loan_id}/disburse", {"bolt11": bolt11}, f"/loans/{loan_id}")
        assert response.status_code == 422, (message, response.text)
        assert message in response.text, response.text
        assert 'action="/loans/%d/disburse"' % loan_id in response.text
        assert [balances(database, lender) for lender in lenders] == before
        assert balances(database, borrower)[AccountKind.USER_AVAILABLE] == 0
    assert "funded, waiting for disbursement" in app_client.get(f"/loans/{loan_id}").text
    assert database.read(verify_ledger).ok


def test_request_fund_disburse_and_repay_through_the_pages(
        app_client: TestClient, database: Database, devnode_session: DevNode) -> None:
    loan_id, borrower, lenders = funded_loan(app_client, database, "happy")
    target = wallet_invoice(devnode_session, LOAN_SAT * 1000)
    done = post(app_client, f"/loans/{loan_id}/disburse", {"bolt11": target}, f"/loans/{loan_id}")
    assert done.status_code == 200, done.text
    assert "Paid out." in done.text

    page = app_client.get(f"/loans/{loan_id}").text
    assert ">active<" in page and "mark-due" in page and page.count("tag-upcoming") == 3
    assert "Lender #1" in page and "Lender #2" in page and "12,000 sat" in page and "8,000 sat" in page
    found = re.search(r'<p class="amount">([^<]+)</p>', page)
    assert found is not None
    due = found.group(1)
    assert "Get invoice" in page

    asked = post(app_client, f"/loans/{loan_id}/repay", {"amount_sat": ""}, f"/loans/{loan_id}")
    assert asked.status_code == 303, asked.text
    pay_path = asked.headers["location"]
    assert re.fullmatch(rf"/loans/{loan_id}/pay/\d+", pay_path)
    pay = app_client.get(pay_path)
    assert pay.status_code == 200 and "<svg" in pay.text and "lnbcrt" in pay.text
    assert f"Pay {due}" in pay.text and "Pay with the demo wallet" in pay.text
    invoice_id = pay_path.rsplit("/", 1)[1]
    paid = app_client.post(f"/demo-wallet/pay/{invoice_id}", data={"csrf_token": csrf_token(app_client, pay_path)},
                           headers={"referer": "http://testserver" + pay_path}, follow_redirects=False)
    assert paid.status_code == 303 and paid.headers["location"].endswith(pay_path)

    status: list[str] = []

    def received() -> bool:
        status[:] = [app_client.get(pay_path + "/status").text]
        return "Payment received" in status[0]

    wait_for(received, 15)
    assert f"Payment received: {due} — thank you" in status[0] and "hx-trigger" not in status[0]
    assert "Interest" in status[0] and "Principal" in status[0]
    after = app_client.get(f"/loans/{loan_id}").text
    assert "tag-paid" in after and "<h2>Repayments</h2>" in after
    lender_cash = sum(balances(database, lender)[AccountKind.USER_AVAILABLE] for lender in lenders)
    assert lender_cash > 10_000_000  # 30,000 deposited - 20,000 lent + the installment net of the fee
    # Any amount to the msat; other scripts' digits are not numbers here.
    exact = post(app_client, f"/loans/{loan_id}/repay", {"amount_sat": "1,234.567"}, f"/loans/{loan_id}")
    assert exact.status_code == 303
    assert "Pay 1,235 sat" in app_client.get(exact.headers["location"]).text  # an invoice of 1,234.567 sat, shown rounded up
    for typed in ("١٠٠٠", "1²", "1.2345", "-5", "0"):
        refused = post(app_client, f"/loans/{loan_id}/repay", {"amount_sat": typed}, f"/loans/{loan_id}")
        assert refused.status_code == 422 and "invalid literal" not in refused.text, typed
    assert sign_in(app_client, "happy-l1@example.org").status_code == 303
    portfolio = app_client.get("/loans/mine").text
    assert "active 1" in portfolio and f'href="/loans/{loan_id}"' in portfolio
    assert database.read(verify_ledger).ok
