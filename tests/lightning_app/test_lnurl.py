"""A loan repaid from its Lightning Address alone (LUD-16 → LUD-06 payRequest → callback → pr → paid →
allocated to the notes), with the dev node's wallet paying as an LNURL wallet does, on each database."""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

import anyio
import httpx
import pytest
from sqlalchemy import Connection, func, select

from marketplace.app import create_app
from marketplace.db import loans
from marketplace.db.engine import Database
from marketplace.db.repayments import repayment_shares
from marketplace.db.tables import installments, invoices, notes, repayments
from marketplace.db.verify import verify_ledger
from marketplace.domain.lnurl import decode_lnurl
from marketplace.domain.loans.allocation import refresh
from marketplace.domain.money import format_msat
from marketplace.services.loans import utc_today
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.reach_support import BORROWER_NAME, STORY, active_loan, address_on_card
from tests.lightning_app.test_deposit_withdraw import wait_for
from tests.web.support import TestClient, sign_in

ADDRESS = re.compile(r"(loan-[a-z0-9]{10})@testserver")
LNURL = re.compile(r"LNURL1[02-9AC-HJ-NP-Z]+")


def owed(database: Database, loan_id: int) -> tuple[int, int]:
    """(payoff today, next due amount) as the services see them."""
    today = utc_today()

    def read(conn: Connection) -> tuple[int, int]:
        loan = loans.get_loan(conn, loan_id)
        state = loans.loan_state(conn, loan)
        due = refresh(state, today).next_due(today)
        assert due is not None
        return state.payoff_msat(today), due[1]

    return database.read(read)


def count_invoices(database: Database) -> int:
    return database.read(lambda c: int(c.execute(select(func.count()).select_from(invoices)).scalar_one()))


def lud06_error(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "ERROR" and reason in body["reason"], body
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_wallet_pays_a_loan_from_its_lightning_address_alone(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    loan = active_loan(database, node_settings, devnode_session, "lnaddr")
    # The borrower prints the card; the wallet knows only what is on it.
    assert sign_in(app_client, loan.borrower_email).status_code == 303
    card = app_client.get(f"/loans/{loan.loan_id}/card")
    assert card.status_code == 200, card.text
    found, coded = ADDRESS.fullmatch(address_on_card(card.text)), LNURL.search(card.text)
    assert found is not None and coded is not None
    address, handle = found.group(0), found.group(1)
    app_client.cookies.clear()

    # LUD-16: user@host → https://host/.well-known/lnurlp/user (http here: the test server); LNURL1 says the same.
    user, host = address.split("@")
    url = f"http://{host}/.well-known/lnurlp/{user}"
    assert decode_lnurl(coded.group(0)) == url
    answer = app_client.get(url)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*"
    body = answer.json()
    payoff, next_due = owed(database, loan.loan_id)
    assert body["tag"] == "payRequest" and body["callback"] == f"http://testserver/lnurlp/{handle}/callback"
    assert body["minSendable"] == 1000 and body["maxSendable"] == payoff
    entries = dict(json.loads(body["metadata"]))
    assert entries["text/identifier"] == address
    plain = entries["text/plain"]
    assert plain == f"Microlend loan {loan.loan_id}. Any amount at any time counts."  # static: issue 21, 2b
    assert BORROWER_NAME not in body["metadata"] and "Rosa" not in body["metadata"]

    # LUD-06 callback: an invoice for exactly the amount, committing to SHA-256 of the metadata.
    before = count_invoices(database)
    reply = app_client.get(body["callback"], params={"amount": str(next_due)})
    assert reply.status_code == 200, reply.text
    assert reply.json()["routes"] == []
    pr = reply.json()["pr"]
    decoded = anyio.run(devnode_session.adapter("wallet").decode, pr)
    assert decoded.amount_msat == next_due and decoded.description is None
    assert decoded.description_hash == hashlib.sha256(body["metadata"].encode()).hexdigest()
    assert count_invoices(database) == before + 1
    row = database.read(lambda c: c.execute(select(invoices).where(invoices.c.bolt11 == pr)).one())
    assert row.purpose == "repayment" and row.loan_id == loan.loan_id and row.user_id == loan.borrower_id
    assert row.label.startswith("microlend:repayment:") and row.description == body["metadata"]

    # The wallet pays as CLN's `pay` does for such an invoice: with the metadata, checked against `h`.
    paid = devnode_session.rpc("wallet").call("pay", {"bolt11": pr, "description": body["metadata"]})
    assert paid["status"] == "complete"

    def credited() -> bool:
        return database.read(lambda c: c.execute(
            select(repayments.c.id).where(repayments.c.payment_hash == row.payment_hash)).first()) is not None

    wait_for(credited, 15)
    shares = database.read(lambda c: repayment_shares(c, row.payment_hash))
    assert len(shares) == 3 and all(share.cash_msat > 0 for share in shares)
    received = database.read(lambda c: c.execute(
        select(func.sum(notes.c.received_msat)).where(notes.c.loan_id == loan.loan_id)).scalar_one())
    assert received == sum(share.cash_msat for share in shares)
    first = database.read(lambda c: c.execute(select(installments).where(
        installments.c.loan_id == loan.loan_id, installments.c.number == 1)).one())
    assert first.settled_on is not None
    assert database.read(lambda c: c.execute(select(invoices.c.status).where(invoices.c.id == row.id))
                         .scalar_one()) == "paid"
    # The same code keeps working: a smaller payoff, and the same metadata (what a wallet holds stays right).
    again = app_client.get(url).json()
    assert again["maxSendable"] == owed(database, loan.loan_id)[0] < payoff
    assert again["metadata"] == body["metadata"]
    assert database.read(verify_ledger).ok


@pytest.fixture
def limited_client(node_settings: Settings, database: Database, devnode_session: DevNode) -> Iterator[TestClient]:
    """The app with a pay code's budget of 2 open invoices (the borrower's own allowance is apart)."""
    app = create_app(node_settings.replace(paycode_open_per_loan=2), database=database,
                     demo_wallet=devnode_session.adapter("wallet"))
    with TestClient(app) as client:
        yield client


def test_lud06_refusals_limits_and_a_repaid_loan(
        limited_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    client = limited_client
    loan = active_loan(database, node_settings, devnode_session, "lnrules")
    assert sign_in(client, loan.borrower_email).status_code == 303
    found = ADDRESS.fullmatch(address_on_card(client.get(f"/loans/{loan.loan_id}/card").text))
    assert found is not None
    handle = found.group(1)
    client.cookies.clear()

    for name in ("loan-zzzzzzzzzz", "alice", "loan-" + "x" * 40, handle + "x"):
        lud06_error(client.get(f"/.well-known/lnurlp/{name}"), 404, "no loan with this pay code")
        lud06_error(client.get(f"/lnurlp/{name}/callback", params={"amount": "5000"}), 404, "no loan")
    assert client.get(f"/.well-known/lnurlp/{handle.upper()}").json()["tag"] == "payRequest"
    payoff, _ = owed(database, loan.loan_id)
    callback = f"/lnurlp/{handle}/callback"
    before = count_invoices(database)
    for raw, reason in (("", "missing"), ("abc", "whole number of millisatoshis"), ("1.5", "whole number"),
                        ("-5", "whole number"), ("١٠٠٠", "whole number"), ("1" * 19, "whole number"),
                        ("999", "smallest payment is 1 sat"), ("0", "smallest payment"),
                        (str(payoff + 1), f"costs {format_msat(payoff)}")):
        lud06_error(client.get(callback, params={"amount": raw}), 400, reason)
    lud06_error(client.get(callback), 400, "missing")
    lud06_error(client.get(f"{callback}?amount=1000&amount=2000"), 422, "one amount")
    assert count_invoices(database) == before

    # The pay code's own budget: an open invoice for the same amount is handed out again, a third is refused.
    small = client.get(callback, params={"amount": "1000"})
    whole = client.get(callback, params={"amount": str(payoff)})
    assert small.status_code == 200 and whole.status_code == 200, whole.text
    assert client.get(callback, params={"amount": "1000"}).json()["pr"] == small.json()["pr"]
    refused = client.get(callback, params={"amount": "1001"})
    lud06_error(refused, 429, "unpaid invoices")
    assert int(refused.headers["retry-after"]) > 0
    assert count_invoices(database) == before + 2

    # Paying the whole loan off: the code then answers that the loan is repaid, and the card is gone.
    assert devnode_session.rpc("wallet").call("xpay", {"invstring": whole.json()["pr"]})["amount_msat"] == payoff
    wait_for(lambda: database.read(lambda c: loans.get_loan(c, loan.loan_id)).status == "repaid", 15)
    lud06_error(client.get(f"/.well-known/lnurlp/{handle}"), 409, "fully repaid")
    lud06_error(client.get(callback, params={"amount": "1000"}), 409, "fully repaid")
    assert sign_in(client, loan.borrower_email).status_code == 303
    gone = client.get(f"/loans/{loan.loan_id}/card")
    assert gone.status_code == 409 and "no repayment card" in gone.text
    assert STORY not in gone.text
    assert database.read(verify_ledger).ok
