"""The JSON API's money endpoints on the dev node: deposit, withdraw, repay — all through API tokens.

The whole app runs (listener and reconciler included); every answer is checked
against the OpenAPI document by `tests.api.test_api.Api`.
"""
from __future__ import annotations

import time

import anyio

from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.money import format_msat
from marketplace.settings import Settings
from tests.api.test_api import LOAN, Api, error_code
from tests.fixtures.devnode import DevNode
from tests.lightning_app.test_deposit_withdraw import _foreign_invoice, wait_for
from tests.web.support import TestClient


def wallet_invoice(devnode: DevNode, amount_msat: int) -> str:
    made = anyio.run(devnode.adapter("wallet").create_invoice, amount_msat, f"api-{time.time_ns()}", "api", 600)
    bolt11: str = made.bolt11
    return bolt11


def wallet_pays(devnode: DevNode, bolt11: str) -> None:
    anyio.run(devnode.adapter("wallet").pay, bolt11, None, 100_000, 30)


def api_deposit(api: Api, devnode: DevNode, who: str, amount_sat: int) -> dict[str, object]:
    made = api.post(who, "/deposits", {"amount_sat": amount_sat})
    assert made.status_code == 201, made.text
    invoice = made.json()
    assert invoice["status"] == "unpaid" and str(invoice["bolt11"]).startswith("lnbcrt")
    assert invoice["amount_msat"] == amount_sat * 1000 and invoice["expires_at"] and invoice["payment_hash"]
    wallet_pays(devnode, str(invoice["bolt11"]))
    seen: list[dict[str, object]] = []

    def paid() -> bool:
        seen[:] = [api.get(who, f"/deposits/{invoice['id']}").json()]
        return seen[0]["status"] == "paid"

    wait_for(paid, 10)
    return seen[0]


def test_a_lender_deposits_and_withdraws_through_the_api(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    api = Api(app_client, database, node_settings)
    api.user("lea", "lender")
    api.user("leo", "lender")
    paid = api_deposit(api, devnode_session, "lea", 50_000)
    assert paid["amount_received_msat"] == 50_000_000 and paid["paid_at"]
    assert api.get("lea", "/me/balances").json()["available_msat"] == 50_000_000
    assert api.get("leo", f"/deposits/{paid['id']}").status_code == 404
    statement = api.get("lea", "/statement").json()["lines"]
    assert [(line["kind"], line["account"], line["amount_msat"]) for line in statement] == [
        ("deposit", "available", 50_000_000)]

    sent = api.post("lea", "/withdrawals", {"bolt11": wallet_invoice(devnode_session, 20_000_000)})
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "succeeded" and sent.json()["fee_msat"] == 0
    assert sent.json()["amount_msat"] == 20_000_000
    assert api.get("lea", "/me/balances").json() == {"available_msat": 30_000_000, "reserved_msat": 0,
                                                     "pending_msat": 0}

    amountless = anyio.run(devnode_session.adapter("wallet").call, "invoice", {
        "amount_msat": "any", "label": f"any-{time.time_ns()}", "description": "any", "expiry": 600})["bolt11"]
    needs_amount = api.post("lea", "/withdrawals", {"bolt11": amountless})
    assert needs_amount.status_code == 422 and error_code(needs_amount) == "invoice_refused"
    with_amount = api.post("lea", "/withdrawals", {"bolt11": amountless, "amount_sat": 1_000})
    assert with_amount.status_code == 200 and with_amount.json()["status"] == "succeeded"
    too_much = api.post("lea", "/withdrawals", {"bolt11": wallet_invoice(devnode_session, 40_000_000)})
    assert too_much.status_code == 409 and error_code(too_much) == "insufficient_funds"
    for bolt11 in ("not an invoice", _foreign_invoice("bc"), "lnbcrt1qqqqqqqq"):
        refused = api.post("lea", "/withdrawals", {"bolt11": bolt11})
        assert refused.status_code == 422 and error_code(refused) == "invoice_refused", bolt11
    broke = api.post("leo", "/withdrawals", {"bolt11": wallet_invoice(devnode_session, 1_000_000)})
    assert broke.status_code == 409 and error_code(broke) == "insufficient_funds"
    assert api.get("lea", "/me/balances").json()["available_msat"] == 29_000_000
    assert database.read(verify_ledger).ok


def test_a_borrower_repays_through_the_api_and_lenders_see_it(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    api = Api(app_client, database, node_settings)
    for name in ("lea", "leo"):
        api.user(name, "lender")
        api_deposit(api, devnode_session, name, 15_000)
    api.user("bea", "borrower")
    api.user("bob", "borrower")
    made = api.post("bea", "/loans", LOAN)
    assert made.status_code == 201
    loan_id = made.json()["loan"]["id"]
    assert api.post("lea", f"/loans/{loan_id}/notes", {"amount_sat": 12_000}).status_code == 201
    funded = api.post("leo", f"/loans/{loan_id}/notes", {"amount_sat": 8_000})
    assert funded.status_code == 201 and funded.json()["loan"]["status"] == "funded"
    early = api.post("bea", f"/loans/{loan_id}/repayments", {})
    assert early.status_code == 409 and error_code(early) == "conflict"

    # The borrower receives the money through the API: an invoice of their own wallet for exactly the loan.
    path = f"/loans/{loan_id}/disbursement"
    assert api.post("bob", path, {"bolt11": wallet_invoice(devnode_session, 20_000_000)}).status_code == 404
    wrong = api.post("bea", path, {"bolt11": wallet_invoice(devnode_session, 19_000_000)})
    assert wrong.status_code == 422 and error_code(wrong) == "invoice_refused"
    assert "19,000 sat" in wrong.json()["error"]["message"] and "20,000 sat" in wrong.json()["error"]["message"]
    assert api.post("bea", path, {}).status_code == 422
    paid_out = api.post("bea", path, {"bolt11": wallet_invoice(devnode_session, 20_000_000)})
    assert paid_out.status_code == 200 and paid_out.json()["status"] == "succeeded", paid_out.text
    again = api.post("bea", path, {"bolt11": wallet_invoice(devnode_session, 20_000_000)})
    assert again.status_code == 409 and error_code(again) == "conflict"
    detail = api.get("bea", f"/loans/{loan_id}").json()
    assert detail["loan"]["status"] == "active" and detail["schedule"]["scheduled"] is True
    due = detail["borrower_view"]["next_due"]
    assert due is not None and detail["borrower_view"]["disbursement"]["status"] == "succeeded"

    assert api.post("bob", f"/loans/{loan_id}/repayments", {}).status_code == 404
    asked = api.post("bea", f"/loans/{loan_id}/repayments")  # no body: the next amount due
    assert asked.status_code == 201, asked.text
    invoice = asked.json()
    assert invoice["purpose"] == "repayment" and invoice["loan_id"] == loan_id
    assert invoice["amount_msat"] == due["amount_msat"]
    assert api.get("bob", f"/loans/{loan_id}/repayments/{invoice['id']}").status_code == 404
    wallet_pays(devnode_session, str(invoice["bolt11"]))
    wait_for(lambda: api.get("bea", f"/loans/{loan_id}/repayments/{invoice['id']}").json()["status"] == "paid", 10)

    after = api.get("lea", f"/loans/{loan_id}").json()
    assert len(after["repayments"]) == 1 and after["repayments"][0]["received_msat"] == due["amount_msat"]
    assert after["schedule"]["installments"][0]["mark"] == "paid" and after["borrower_view"] is None
    portfolio = api.get("lea", "/portfolio").json()
    # Paid the day the loan started: no interest has accrued yet, so it is all principal (and no fee).
    assert after["repayments"][0]["interest_msat"] == 0 and after["repayments"][0]["service_fee_msat"] == 0
    assert after["repayments"][0]["principal_msat"] == due["amount_msat"]
    assert portfolio["totals"]["received_msat"] == due["amount_msat"] * 12 // 20
    assert portfolio["totals"]["income_msat"] == 0
    assert portfolio["by_state"] == {"active": 1}
    kinds = {line["kind"] for line in api.get("lea", "/statement").json()["lines"]}
    assert {"deposit", "pledge"} <= kinds and len(kinds) >= 3

    partial = api.post("bea", f"/loans/{loan_id}/repayments", {"amount_sat": 1_000})
    assert partial.status_code == 201 and partial.json()["amount_msat"] == 1_000_000
    payoff = api.get("bea", f"/loans/{loan_id}").json()["borrower_view"]["payoff_msat"]
    exact = api.post("bea", f"/loans/{loan_id}/repayments", {"amount_msat": payoff})
    assert exact.status_code == 201 and exact.json()["amount_msat"] == payoff  # a payoff to the msat
    both = api.post("bea", f"/loans/{loan_id}/repayments", {"amount_msat": 5, "amount_sat": 1})
    assert both.status_code == 422 and "not both" in both.json()["error"]["message"]
    too_much = api.post("bea", f"/loans/{loan_id}/repayments", {"amount_msat": payoff + 1})
    assert too_much.status_code == 422 and error_code(too_much) == "invalid_input"
    # One formatter for amounts: "8,814.166 sat", never "8,814 sat.166".
    assert f"Paying the whole loan off today costs {format_msat(payoff)};" in too_much.json()["error"]["message"]
    assert database.read(verify_ledger).ok
