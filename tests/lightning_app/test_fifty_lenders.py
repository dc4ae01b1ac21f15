"""The end-to-end loan: 50 lenders fund one loan through the pages, the borrower repays it in 30
installments from the wallet node, and every lender ends with exactly what the schedule and the split say.

Time is the one thing moved: before each payment the loan's dates (start,
last accrual, due dates) are shifted a week into the past, so each payment
the borrower makes is one installment falling due, in order, as if the weeks
had passed.

The expectation is computed here from the rules alone, independently of the
code: paid on the due dates the loan costs exactly its schedule; the fee is
10 % of the cumulative interest, rounded down; each note holds its pro-rata
part of what the lenders received, rounded down, and the last few msats go
by largest remainder when the loan is repaid, ties starting at the note whose
position is the loan id modulo the number of notes.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from marketplace.db.engine import Database
from marketplace.db.tables import accounts, installments, loans, notes, repayments
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method, build_schedule
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.test_deposit_withdraw import balances, deposit, user_id_of, wait_for
from tests.lightning_app.test_loan_pages import post, wallet_invoice
from tests.web.support import TestClient, csrf_token, sign_in, sign_out, sign_up

LENDERS = 50
COUNT = 30
RATE_BPS = 2000
DEPOSIT_SAT = 5_000
NOTES_SAT = [1_000 + 40 * i for i in range(LENDERS)]
NOTES_SAT[-1] += 100_000 - sum(NOTES_SAT)
LOAN_SAT = sum(NOTES_SAT)


def test_fifty_lenders_thirty_installments(app_client: TestClient, database: Database, node_settings: Settings,
                                           devnode_session: DevNode) -> None:
    assert LOAN_SAT == 100_000 and len(set(NOTES_SAT)) > 1
    # The borrower asks first; the lenders arrive, deposit over Lightning and fund a note each.
    assert sign_up(app_client, "borrower@fifty.test", role="borrower").status_code == 303
    borrower = user_id_of(database, "borrower@fifty.test")
    made = post(app_client, "/loans/new", {
        "amount_sat": str(LOAN_SAT), "purpose": "business", "rate": "20", "count": str(COUNT),
        "frequency": "weekly", "method": "annuity", "story": "Stock for a grocery kiosk, repaid every week."},
        "/loans/new")
    assert made.status_code == 303, made.text
    loan_id = int(made.headers["location"].rsplit("/", 1)[1])
    sign_out(app_client)

    lenders = []
    for index, note_sat in enumerate(NOTES_SAT):
        email = f"lender{index}@fifty.test"
        assert sign_up(app_client, email).status_code == 303
        lender = user_id_of(database, email)
        invoice_id = deposit(app_client, str(DEPOSIT_SAT))
        app_client.post(f"/demo-wallet/pay/{invoice_id}", data={"csrf_token": csrf_token(app_client, "/deposit")})
        wait_for(lambda: balances(database, lender)[AccountKind.USER_AVAILABLE] == DEPOSIT_SAT * 1000, 15)
        funded = post(app_client, f"/loans/{loan_id}/fund", {"amount_sat": str(note_sat)}, f"/loans/{loan_id}")
        assert funded.status_code == 303, funded.text
        lenders.append(lender)
        sign_out(app_client)
    assert database.read(lambda c: c.execute(select(loans.c.status).where(loans.c.id == loan_id)).scalar_one()) \
        == "funded"

    # Disbursed to an invoice of the borrower's own wallet.
    assert sign_in(app_client, "borrower@fifty.test").status_code == 303
    page = post(app_client, f"/loans/{loan_id}/disburse",
                {"bolt11": wallet_invoice(devnode_session, LOAN_SAT * 1000)}, f"/loans/{loan_id}")
    assert page.status_code == 200 and "active" in page.text, page.text
    start = database.read(lambda c: c.execute(select(loans.c.start_date).where(loans.c.id == loan_id)).scalar_one())
    schedule = build_schedule(LOAN_SAT * 1000, RATE_BPS, COUNT, Frequency.WEEKLY, Method.ANNUITY, start)
    stored = database.read(lambda c: c.execute(
        select(installments.c.principal_msat, installments.c.interest_msat)
        .where(installments.c.loan_id == loan_id).order_by(installments.c.number)).all())
    assert [tuple(r) for r in stored] == [(i.principal_msat, i.interest_msat) for i in schedule.installments]

    def a_week_passes(conn: object) -> None:
        week = timedelta(weeks=1)
        for row in conn.execute(select(installments.c.id, installments.c.due_date)  # type: ignore[attr-defined]
                                .where(installments.c.loan_id == loan_id)).all():
            conn.execute(update(installments).where(installments.c.id == row.id)  # type: ignore[attr-defined]
                         .values(due_date=row.due_date - week))
        dates = conn.execute(select(loans.c.start_date, loans.c.accrued_on)  # type: ignore[attr-defined]
                             .where(loans.c.id == loan_id)).one()
        conn.execute(update(loans).where(loans.c.id == loan_id).values(  # type: ignore[attr-defined]
            start_date=dates.start_date - week, accrued_on=dates.accrued_on - week))

    # Thirty installments, each paid on its due date through its own invoice from the wallet node.
    for number, installment in enumerate(schedule.installments, start=1):
        database.run(a_week_passes)
        loan_page = app_client.get(f"/loans/{loan_id}").text
        # The next-due box shows this installment, rounded up to the whole sat (paying it settles it).
        assert f"{-(-installment.total_msat // 1000):,}" in loan_page
        response = post(app_client, f"/loans/{loan_id}/repay", {"amount_sat": ""}, f"/loans/{loan_id}")
        assert response.status_code == 303, response.text
        pay_page = response.headers["location"]
        invoice_id = int(pay_page.rsplit("/", 1)[1])
        app_client.post(f"/demo-wallet/pay/{invoice_id}", data={"csrf_token": csrf_token(app_client, pay_page)})
        wait_for(lambda: len(database.read(lambda c: c.execute(
            select(repayments.c.id).where(repayments.c.loan_id == loan_id)).all())) == number, 15)
    assert database.read(lambda c: c.execute(select(loans.c.status).where(loans.c.id == loan_id)).scalar_one()) \
        == "repaid"

    # What the schedule and the rules say, computed here from the rules alone.
    weights = [n * 1000 for n in NOTES_SAT]
    total_weight = sum(weights)
    interest = sum(i.interest_msat for i in schedule.installments)
    fees = interest * node_settings.service_fee_bps // 10_000  # of income only, rounded down once
    lenders_total = schedule.total_msat - fees
    floors = [lenders_total * w // total_weight for w in weights]
    leftover = lenders_total - sum(floors)
    start_at = loan_id % LENDERS
    by_remainder = sorted(range(LENDERS), key=lambda i: (-(lenders_total * weights[i] % total_weight),
                                                         (i - start_at) % LENDERS))
    expected_cash = [f + (1 if i in by_remainder[:leftover] else 0) for i, f in enumerate(floors)]
    assert sum(expected_cash) + fees == schedule.total_msat
    for j, lender in enumerate(lenders):
        final = balances(database, lender)
        assert final[AccountKind.USER_RESERVED] == 0
        assert final[AccountKind.USER_AVAILABLE] == DEPOSIT_SAT * 1000 - NOTES_SAT[j] * 1000 + expected_cash[j], j
        assert expected_cash[j] >= NOTES_SAT[j] * 1000  # every lender got at least the principal back
    assert balances(database, borrower)[AccountKind.USER_AVAILABLE] == 0  # nothing overpaid, nothing refunded
    notes_left = database.read(lambda c: c.execute(select(notes.c.principal_outstanding_msat, notes.c.status)
                                                   .where(notes.c.loan_id == loan_id)).all())
    assert all(r.principal_outstanding_msat == 0 and r.status == "repaid" for r in notes_left)
    escrow = database.read(lambda c: c.execute(select(accounts.c.balance_msat).select_from(
        loans.join(accounts, accounts.c.id == loans.c.escrow_account_id)).where(loans.c.id == loan_id)).scalar_one())
    assert escrow == 0  # every held msat paid out at the close
    assert database.read(verify_ledger).ok
