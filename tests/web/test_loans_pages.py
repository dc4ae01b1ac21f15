"""The loan pages through the real ASGI app: every page renders, and every bad input is refused and stores nothing."""
from __future__ import annotations

from portfolio.pd import first_request_grade

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import Connection, func, insert, select, update

from lightning.port import CreatedInvoice
from marketplace.db import disbursements, invoices, ledger
from marketplace.db.engine import Database
from marketplace.db.tables import installments, loans, notes, outbox
from marketplace.domain.errors import Forbidden
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.services import notice_board
from marketplace.services.accounts import create_user
from marketplace.settings import Settings
from tests.ledger_helpers import deposit_entry
from tests.web.support import PASSWORD, TestClient, count, csrf_token, make_client, sign_in

GOOD_REQUEST = {"amount_sat": "20,000", "purpose": "business", "rate": "18", "count": "12", "frequency": "weekly",
                "method": "annuity", "story": "A second sewing machine so I can take twice the orders."}


@pytest.fixture
def clients(settings: Settings, database: Database) -> Iterator[dict[str, TestClient]]:
    """Signed-in clients: two borrowers, two lenders (lender money from a deposit entry), one operator."""
    people = {"bea": "borrower", "bob": "borrower", "lea": "lender", "leo": "lender", "ops": "operator"}
    made: dict[str, TestClient] = {}
    try:
        for name, role in people.items():
            user_id = create_user(database, settings, f"{name}@example.org", PASSWORD, role, name.capitalize())
            client = make_client(settings, database).__enter__()
            made[name] = client
            client.user_id = user_id
            assert sign_in(client, f"{name}@example.org").status_code == 303
        for name, amount_sat in (("lea", 15_000), ("leo", 50_000)):
            user_id = uid(made[name])
            database.run(lambda c: ledger.post(c, [deposit_entry(
                c, ledger.account_id(c, ledger.user_account_code(user_id, AccountKind.USER_AVAILABLE)),
                amount_sat * 1000)]))
        made["anon"] = make_client(settings, database).__enter__()  # a visitor, signed in as nobody
        yield made
    finally:
        for client in made.values():
            client.__exit__(None, None, None)


def uid(client: TestClient) -> int:
    return int(client.user_id)


def post(client: TestClient, path: str, data: dict[str, str], page: str = "/loans") -> httpx.Response:
    response: httpx.Response = client.post(path, data={"csrf_token": csrf_token(client, page), **data},
                                           follow_redirects=False)
    return response


def request_loan(client: TestClient, **changes: str) -> int:
    response = post(client, "/loans/new", {**GOOD_REQUEST, **changes}, "/loans/new")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/loans/\d+", location)
    return int(location.rsplit("/", 1)[1])


def balances(database: Database, user_id: int) -> dict[AccountKind, int]:
    return database.read(lambda c: ledger.user_balances(c, user_id))


def note_count(database: Database) -> int:
    return count(database, notes)


# --- requests --------------------------------------------------------------------------------------------


def test_the_request_form_previews_the_full_price(clients: dict[str, TestClient]) -> None:
    bea = clients["bea"]
    page = bea.get("/loans/new")
    assert page.status_code == 200
    assert 'hx-get="/loans/preview"' in page.text and "delay:400ms" in page.text
    assert 'hx-include="closest form"' in page.text and 'name="csrf_token"' in page.text
    assert "<script" not in page.text.split("</head>")[1] and "style=" not in page.text
    assert "Your limit now" in page.text and "100,000 sat" in page.text
    preview = bea.get("/loans/preview", params={"amount_sat": "20000", "rate": "18", "count": "12",
                                                "frequency": "weekly", "method": "annuity"})
    assert preview.status_code == 200
    assert "APR" in preview.text and "Total interest" in preview.text and "APRC" in preview.text
    assert "19.68 %" in preview.text  # 18 % weekly, compounded: (1 + 0.18/52)^52 - 1
    assert "of the lenders' interest, taken from their side: it does not change what you pay" in preview.text
    assert preview.text.count("<tr>") == 13  # header + 12 installments
    assert "<html" not in preview.text  # a fragment
    refused = bea.get("/loans/preview", params={"amount_sat": "20000", "rate": "99", "count": "12",
                                                "frequency": "weekly"})
    assert refused.status_code == 200 and "highest interest rate" in refused.text
    assert "Fill in the amount" in bea.get("/loans/preview").text
    assert clients["lea"].get("/loans/preview").status_code == 403


def test_a_borrower_requests_a_loan_and_everyone_can_read_its_page(clients: dict[str, TestClient],
                                                                   database: Database) -> None:
    loan_id = request_loan(clients["bea"])
    for name in ("bea", "lea", "bob", "ops", "anon"):
        page = clients[name].get(f"/loans/{loan_id}")
        assert page.status_code == 200, page.text
        text = page.text
        expected = str(first_request_grade(20_000_000, 12, "weekly"))
        assert "A second sewing machine" in text and f"grade {expected}" in text
        # Only the borrower sees her name; lenders and the operator see a pseudonym.
        assert ("Bea" in text) == (name == "bea") and ("borrower #" in text) == (name != "bea")
        # Risk in plain words first, the model's terms behind "How this is computed".
        assert "in 100 loans like this one are expected not to be repaid in full" in text
        assert "Expected loss: about" in text and "How this is computed" in text
        assert "over the term left, from our model" in text
        assert "20,000 sat" in text and "18 %" in text and "APR" in text
        assert "12 weekly installments" in text and "Equal installments" in text
        assert "<progress" in text and "Funding deadline" in text
        assert "never of principal; it does not change what the borrower pays" in text
        assert "Overdue installments first" in text and "15 days" in text and "more than 60 days" in text
        assert "Interest is simple interest on the principal still owed" in text  # the rules, from the domain
        assert "within 1 msat" not in text or "rounded down to the" in text
        assert "exact share" in text or "pro-rata part" in text
        assert "APRC" in text and "19.68 %" in text
        assert text.count("<tr>") >= 13
        assert ("Fund a note" in text) == (name == "lea")
        assert ("Sign up to fund this loan" in text) == (name == "anon")  # a visitor reads it too
        assert "@example.org" not in text
    assert "Lender #" not in clients["lea"].get(f"/loans/{loan_id}").text
    assert clients["bea"].get("/loans/999999").status_code == 404
    assert clients["bea"].get("/loans/abc").status_code == 404
    assert clients["bea"].get("/loans/99999999999999999999999").status_code == 404


@pytest.mark.parametrize("changes, message", [
    ({"amount_sat": "5000"}, "The smallest loan is 10,000 sat"),
    ({"amount_sat": "200000"}, "Your current limit is 100,000 sat"),
    ({"amount_sat": "12abc"}, "Enter a whole number of sat"),
    ({"amount_sat": ""}, "Enter a whole number of sat"),
    ({"rate": "61"}, "The highest interest rate allowed is 60 % a year"),
    ({"rate": "lots"}, "Enter the yearly interest rate as a number"),
    ({"rate": "18.123"}, "at most two decimals"),
    ({"count": "0"}, "Choose between 1 and 260 weekly installments"),
    ({"count": "400"}, "Choose between 1 and 260 weekly installments"),
    ({"count": "ten"}, "Enter the number of installments as a whole number"),
    ({"frequency": "hourly"}, "Choose daily, weekly or monthly"),
    ({"method": "balloon"}, "Choose equal installments or equal principal"),
    ({"purpose": "yacht"}, "Choose what the loan is for"),
    ({"story": ""}, "at least 20 characters"),
    ({"story": "Too short."}, "at least 20 characters"),
])
def test_a_request_outside_the_limits_is_refused_and_stores_nothing(
        clients: dict[str, TestClient], database: Database, changes: dict[str, str], message: str) -> None:
    response = post(clients["bea"], "/loans/new", {**GOOD_REQUEST, **changes}, "/loans/new")
    assert response.status_code == 422, response.text
    text = response.text
    assert message in text
    assert 'action="/loans/new"' in text  # the form again, with what was typed
    for name, value in changes.items():
        if value and name not in ("frequency", "method", "purpose"):
            assert value in text
    assert count(database, loans) == 0
    if set(changes) <= {"story", "purpose"}:  # valid terms: the price shows server-side too
        assert "Before you ask: the full price" in text


def test_lenders_and_operators_cannot_request_and_one_open_loan_at_a_time(
        clients: dict[str, TestClient], database: Database) -> None:
    assert post(clients["lea"], "/loans/new", GOOD_REQUEST).status_code == 403
    assert clients["ops"].get("/loans/new").status_code == 403
    request_loan(clients["bea"])
    again = post(clients["bea"], "/loans/new", GOOD_REQUEST, "/loans/new")
    assert again.status_code == 422 and "already have an open loan" in again.text
    assert count(database, loans) == 1


# --- notes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount, status, message", [
    ("500", 422, "The smallest note is 1,000 sat"),
    ("25000", 422, "Only 20,000 sat remain to fund this request"),
    ("16000", 422, "You have 15,000 sat available"),
    ("1k", 422, "Enter a whole number of sat"),
    ("0", 422, "more than 0 sat"),
])
def test_a_bad_note_is_refused_and_changes_nothing(clients: dict[str, TestClient], database: Database,
                                                   amount: str, status: int, message: str) -> None:
    loan_id = request_loan(clients["bea"])
    lea = clients["lea"]
    before = balances(database, uid(lea))
    response = post(lea, f"/loans/{loan_id}/fund", {"amount_sat": amount}, f"/loans/{loan_id}")
    assert response.status_code == status, response.text
    assert message in response.text
    assert "Fund a note" in response.text
    assert balances(database, uid(lea)) == before
    assert note_count(database) == 0


def test_a_borrower_cannot_fund_even_their_own_request(clients: dict[str, TestClient], database: Database,
                                                       settings: Settings) -> None:
    loan_id = request_loan(clients["bea"])
    for name in ("bea", "bob", "ops"):
        response = post(clients[name], f"/loans/{loan_id}/fund", {"amount_sat": "1000"}, f"/loans/{loan_id}")
        assert response.status_code == 403
    assert "Fund a note" not in clients["bea"].get(f"/loans/{loan_id}").text
    # And the service itself refuses the borrower as a lender of their own request.
    with pytest.raises(Forbidden, match="your own loan"):
        loan_service.pledge(database, settings, uid(clients["bea"]), loan_id, 1_000_000)
    assert note_count(database) == 0


def test_lenders_fund_withdraw_and_never_touch_another_pledge(clients: dict[str, TestClient],
                                                              database: Database) -> None:
    loan_id = request_loan(clients["bea"])
    lea, leo = clients["lea"], clients["leo"]
    page = lea.get(f"/loans/{loan_id}")
    found = re.search(r'name="request_key" value="([^"]+)"', page.text)
    assert found is not None
    key = found.group(1)
    data = {"csrf_token": csrf_token(lea, f"/loans/{loan_id}"), "amount_sat": "5,000", "request_key": key}
    first = lea.post(f"/loans/{loan_id}/fund", data=data, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == f"/loans/{loan_id}?done=funded"
    # The same form posted twice pledges once.
    assert lea.post(f"/loans/{loan_id}/fund", data=data, follow_redirects=False).status_code == 303
    assert note_count(database) == 1
    assert balances(database, uid(lea))[AccountKind.USER_RESERVED] == 5_000_000
    assert post(leo, f"/loans/{loan_id}/fund", {"amount_sat": "3000"}, f"/loans/{loan_id}").status_code == 303

    page = lea.get(f"/loans/{loan_id}?done=funded")
    assert "Your note is pledged" in page.text
    assert "Lender #1 (you)" in page.text and "Lender #2" in page.text and "Lender #2 (you)" not in page.text
    assert "8,000 sat of 20,000 sat pledged" in page.text and "12,000 sat to go" in page.text
    assert "Leo" not in page.text and "leo@" not in page.text
    lea_note = database.read(lambda c: int(c.execute(select(notes.c.id).where(
        notes.c.lender_id == uid(lea))).scalar_one()))
    assert f'action="/loans/notes/{lea_note}/withdraw"' in page.text

    before = balances(database, uid(lea))
    stolen = post(leo, f"/loans/notes/{lea_note}/withdraw", {}, f"/loans/{loan_id}")
    assert stolen.status_code == 404
    assert post(clients["bea"], f"/loans/notes/{lea_note}/withdraw", {}, f"/loans/{loan_id}").status_code == 403
    assert post(leo, "/loans/notes/999999/withdraw", {}).status_code == 404
    assert balances(database, uid(lea)) == before and note_count(database) == 2

    mine = post(lea, f"/loans/notes/{lea_note}/withdraw", {}, f"/loans/{loan_id}")
    assert mine.status_code == 303
    assert balances(database, uid(lea))[AccountKind.USER_AVAILABLE] == 15_000_000
    assert balances(database, uid(lea))[AccountKind.USER_RESERVED] == 0
    again = post(lea, f"/loans/notes/{lea_note}/withdraw", {}, f"/loans/{loan_id}")
    assert again.status_code == 409 and "Only a pledge" in again.text
    assert "3,000 sat of 20,000 sat pledged" in lea.get(f"/loans/{loan_id}").text


def test_a_funded_request_takes_no_more_notes_and_shows_the_borrower_the_disbursement_form(
        clients: dict[str, TestClient], database: Database) -> None:
    loan_id = request_loan(clients["bea"], amount_sat="20000")
    assert post(clients["leo"], f"/loans/{loan_id}/fund", {"amount_sat": "20000"}, f"/loans/{loan_id}").status_code == 303
    late = post(clients["lea"], f"/loans/{loan_id}/fund", {"amount_sat": "1000"}, f"/loans/{loan_id}")
    assert late.status_code == 409 and "no longer taking pledges" in late.text
    page = clients["bea"].get(f"/loans/{loan_id}").text
    assert 'action="/loans/%d/disburse"' % loan_id in page and "microlend wallet invoice 20000" in page
    assert "disburse" not in clients["lea"].get(f"/loans/{loan_id}").text.split("<h2>Funding")[1].split("Schedule")[0]
    bob = post(clients["bob"], f"/loans/{loan_id}/disburse", {"bolt11": "lnbcrt1"}, f"/loans/{loan_id}")
    assert bob.status_code == 404
    empty = post(clients["bea"], f"/loans/{loan_id}/disburse", {"bolt11": "  "}, f"/loans/{loan_id}")
    assert empty.status_code == 422 and "Paste a Lightning invoice" in empty.text
    assert database.read(lambda c: c.execute(select(loans.c.status)).scalar_one()) == "funded"


# --- paying ----------------------------------------------------------------------------------------------


def _fake_invoice(database: Database, user_id: int, loan_id: int | None, purpose: str = "repayment") -> int:
    def work(c: Connection) -> int:
        row = invoices.record_new(c, purpose, user_id, 1_000_000, "test", loan_id)
        invoices.mark_created(c, row.id, CreatedInvoice(row.label, f"{row.id:064x}", "lnbcrt10u1fake", "",
                                                        int(time.time()) + 600, row.id))
        return row.id

    return database.run(work)


def test_only_the_borrower_sees_their_repayment_invoice(clients: dict[str, TestClient], database: Database) -> None:
    loan_id = request_loan(clients["bea"])
    invoice_id = _fake_invoice(database, uid(clients["bea"]), loan_id)
    own = clients["bea"].get(f"/loans/{loan_id}/pay/{invoice_id}")
    assert own.status_code == 200 and "lnbcrt10u1fake" in own.text and "<svg" in own.text
    # Live by server-sent events (static/live.js), not a poll every second.
    assert f'data-live-src="/loans/{loan_id}/pay/{invoice_id}/events?since=unpaid"' in own.text
    assert "hx-trigger" not in own.text
    assert "Waiting for the payment" in clients["bea"].get(f"/loans/{loan_id}/pay/{invoice_id}/events").text
    assert "Waiting for the payment" in clients["bea"].get(f"/loans/{loan_id}/pay/{invoice_id}/status").text
    for name in ("bob", "lea", "ops"):
        assert clients[name].get(f"/loans/{loan_id}/pay/{invoice_id}").status_code == 404
        assert clients[name].get(f"/loans/{loan_id}/pay/{invoice_id}/status").status_code == 404
    # The right invoice under another loan's address, or a deposit invoice, is not a repayment page either.
    assert clients["bea"].get(f"/loans/{loan_id + 1}/pay/{invoice_id}").status_code == 404
    deposit_id = _fake_invoice(database, uid(clients["lea"]), None, "deposit")
    assert clients["lea"].get(f"/loans/{loan_id}/pay/{deposit_id}").status_code == 404
    assert clients["bea"].get(f"/loans/{loan_id}/pay/x").status_code == 404
    assert clients["bob"].post(f"/loans/{loan_id}/repay", data={
        "csrf_token": csrf_token(clients["bob"], "/loans"), "amount_sat": ""}).status_code == 404


def test_repaying_a_loan_that_is_not_active_is_refused(clients: dict[str, TestClient]) -> None:
    loan_id = request_loan(clients["bea"])
    response = post(clients["bea"], f"/loans/{loan_id}/repay", {"amount_sat": ""}, f"/loans/{loan_id}")
    assert response.status_code == 409 and "takes no repayments" in response.text
    bad = post(clients["bea"], f"/loans/{loan_id}/repay", {"amount_sat": "lots"}, f"/loans/{loan_id}")
    assert bad.status_code == 422


# --- lists and reports -----------------------------------------------------------------------------------


def _started_loan(database: Database, settings: Settings, borrower: int, lender: int, days_ago: int) -> int:
    """A loan funded by `lender` and disbursed `days_ago` days ago (the node is not involved)."""
    terms = LoanTerms(20_000_000, 1800, 4, Frequency.WEEKLY, Method.ANNUITY)
    loan_id = loan_service.request_loan(database, settings, borrower, terms, "farming",
                                        "Seeds and a water pump for the dry season.")
    loan_service.pledge(database, settings, lender, loan_id, 20_000_000)
    hash_ = f"{loan_id:064x}"

    def start(c: Connection) -> None:
        payment_id = disbursements.hold(c, loan_id, borrower, hash_, "lnbcrt-test", 10_000)
        disbursements.settle(c, payment_id, loan_id, hash_, 0, None,
                             today=loan_service.utc_today() - timedelta(days=days_ago))

    database.run(start)
    return loan_id


def test_lists_portfolio_and_the_operator_report(clients: dict[str, TestClient], database: Database,
                                                 settings: Settings) -> None:
    open_id = request_loan(clients["bob"])
    late_id = _started_loan(database, settings, uid(clients["bea"]), uid(clients["leo"]), days_ago=40)
    assert count(database, installments) == 4

    listing = clients["lea"].get("/loans")
    assert listing.status_code == 200
    assert f'href="/loans/{open_id}"' in listing.text and f'href="/loans/{late_id}"' not in listing.text
    assert "20,000 sat" in listing.text and "18 %" in listing.text and f"grade {first_request_grade(20_000_000, 12, 'weekly')}" in listing.text
    assert clients["lea"].get("/loans?page=2").status_code == 200
    refused = clients["lea"].get("/loans?page=x")
    assert refused.status_code == 422 and "The page number must be a whole number from 1" in refused.text

    page = clients["bea"].get(f"/loans/{late_id}")
    assert page.status_code == 200
    assert "mark-late" in page.text and "Next payment" in page.text and "overdue" in page.text
    assert "Get invoice" in page.text and "Pay another amount" in page.text
    assert re.search(r'<button type="submit" class="wide-button">Pay [\d,]+ sat</button>', page.text)
    assert "Get invoice" not in clients["leo"].get(f"/loans/{late_id}").text

    mine = clients["bea"].get("/loans/mine")
    assert mine.status_code == 200 and f'href="/loans/{late_id}"' in mine.text and "days past due" in mine.text
    portfolio = clients["leo"].get("/loans/mine")
    assert portfolio.status_code == 200
    assert "Principal outstanding" in portfolio.text and "20,000 sat" in portfolio.text
    assert "Interest earned" in portfolio.text and "Losses" in portfolio.text and "active 1" in portfolio.text
    assert clients["ops"].get("/loans/mine").status_code == 403

    report = clients["ops"].get("/operator/loans")
    assert report.status_code == 200
    assert re.search(r'id="par1">100 %<', report.text) and re.search(r'id="par30">100 %<', report.text)
    assert f'href="/loans/{late_id}"' in report.text and "Bea" in report.text and ">33<" in report.text
    for name in ("bea", "lea"):
        assert clients[name].get("/operator/loans").status_code == 403


def test_the_operator_report_is_zero_on_an_empty_book(clients: dict[str, TestClient]) -> None:
    report = clients["ops"].get("/operator/loans")
    assert report.status_code == 200 and 'id="par30">0 %<' in report.text and "No loan is late" in report.text


def test_pages_need_a_session(settings: Settings, database: Database) -> None:
    with make_client(settings, database) as anonymous:
        for path in ("/loans/new", "/loans/mine", "/operator/loans", "/loans/1/pay/1"):
            response = anonymous.get(path, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"].startswith("/signin?next=")
        assert count(database, loans) == 0
        assert database.read(lambda c: c.execute(select(func.count()).select_from(notes)).scalar_one()) == 0


# --- dashboards and notices -------------------------------------------------------------------------------


def _notices_of(database: Database, user_id: int) -> dict[str, str]:
    return dict(database.read(lambda c: c.execute(select(outbox.c.dedupe_key, outbox.c.kind)
                                                  .where(outbox.c.user_id == user_id)).all()))


def test_funded_and_paid_out_loans_send_notices_and_dashboards_lead_to_the_next_step(
        clients: dict[str, TestClient], database: Database, settings: Settings) -> None:
    bea, leo = uid(clients["bea"]), uid(clients["leo"])
    # A lender with money and no notes is pointed to the market and auto-invest; a borrower with nothing
    # due is told so, and sees no one else's balances.
    lender_page = clients["leo"].get("/dashboard").text
    assert "This money is not working yet" in lender_page and 'href="/autoinvest"' in lender_page
    assert "Soon you will" not in lender_page
    borrower_page = clients["bea"].get("/dashboard").text
    assert "Nothing to pay right now." in borrower_page and "Reserved" not in borrower_page

    loan_id = request_loan(clients["bea"], amount_sat="20000")
    assert f"Loan {loan_id}" in clients["bea"].get("/dashboard").text  # the request, with its funding progress
    assert post(clients["leo"], f"/loans/{loan_id}/fund", {"amount_sat": "20000"}, f"/loans/{loan_id}").status_code == 303
    assert _notices_of(database, bea) == {f"funded:{loan_id}:{bea}": "funded"}
    assert _notices_of(database, leo) == {f"funded:{loan_id}:{leo}": "funded"}
    funded = clients["bea"].get("/dashboard").text
    assert "Fully funded." in funded and f'href="/loans/{loan_id}#receive"' in funded  # where to act

    bob = uid(clients["bob"])
    started = _started_loan(database, settings, bob, leo, days_ago=10)  # the first installment is 3 days late
    assert f"disbursed:{started}:{leo}" in _notices_of(database, leo)
    due = clients["bob"].get("/dashboard").text
    assert "overdue" in due and f'action="/loans/{started}/repay"' in due
    assert re.search(r'<button type="submit" class="wide-button">Pay [\d,]+ sat</button>', due)
    # The borrower's "Pay" asks for the next due amount at once: the form sends no amount.
    assert re.search(rf'action="/loans/{started}/repay">\s*<input type="hidden" name="csrf_token" value="[^"]+">\s*'
                     r'<input type="hidden" name="amount_sat" value="">', due)


def test_a_late_notice_resolves_itself_once_the_installment_is_paid(
        clients: dict[str, TestClient], database: Database, settings: Settings) -> None:
    bea, leo = uid(clients["bea"]), uid(clients["leo"])
    loan_id = _started_loan(database, settings, bea, leo, days_ago=10)
    now = datetime.now(timezone.utc)
    database.run(lambda c: c.execute(insert(outbox).values(
        user_id=bea, kind="late", dedupe_key=f"late:{loan_id}:1", subject=f"Loan {loan_id}: installment 1 is late",
        body=f"It is not paid.\nPay from the loan's page: /loans/{loan_id}", created_at=now, status="sent", error="")))
    [late] = [n for n in database.read(lambda c: notice_board.board(c, bea)) if n.kind == "late"]
    assert not late.resolved and late.unread and late.action == "pay" and late.body == "It is not paid."
    page = clients["bea"].get("/dashboard").text
    assert f'href="/loans/{loan_id}#pay"' in page and "Pay now" in page and "Mark as read" in page
    database.run(lambda c: c.execute(update(installments).where(
        installments.c.loan_id == loan_id, installments.c.number == 1).values(settled_on=now.date())))
    [done] = [n for n in database.read(lambda c: notice_board.board(c, bea)) if n.kind == "late"]
    assert done.resolved and not done.unread and done.action == "open"
    page = clients["bea"].get("/dashboard").text
    assert "notices already taken care of" in page  # the late one, and "fully funded" once paid out
    assert "Pay now" not in page


def test_a_refusal_keeps_the_signed_in_header_says_why_in_the_pages_terms_and_leads_back(
        clients: dict[str, TestClient]) -> None:
    loan_id = request_loan(clients["bea"], amount_sat="20000")
    card = clients["bea"].get(f"/loans/{loan_id}/card")
    assert card.status_code == 409
    assert "The repayment card is ready once the loan is paid out." in card.text
    assert "This cannot be done now" in card.text and "Already exists" not in card.text
    assert 'action="/signout"' in card.text and 'href="/dashboard"' in card.text  # still signed in
    assert f'href="/loans/{loan_id}">Back to the loan' in card.text
    missing = clients["bea"].get("/loans/999999")
    assert missing.status_code == 404 and 'action="/signout"' in missing.text and "Go to your dashboard" in missing.text
    assert "Back to the home page" in clients["anon"].get("/no-such-page").text
