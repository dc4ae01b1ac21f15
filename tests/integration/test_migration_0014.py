"""Revision 0014 carries running loans onto issue 18's rules without moving money."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, text

from marketplace.db import migrate
from marketplace.db.engine import Database, make_engine


def test_a_running_loan_keeps_what_it_owes_and_its_open_installments_follow_the_new_accrual(tmp_path: Path) -> None:
    """30,000 sat at 24 % over 3 months; the first installment paid on its date, then 1,000,000 msat mid-period.

    The old rules compounded the part of a period left after that payment (B((1 + r)^d - 1)); the new ones
    charge simple interest. The balance (principal owed, interest to the last payment) does not move, the
    part-paid installment keeps its total, and the last one is recomputed: a whole period's 2 % on the
    principal left after the second.
    """
    from marketplace.db import ledger
    from marketplace.db.tables import installments, loans
    from marketplace.db.verify import verify_ledger
    from marketplace.domain.journal import AccountKind
    from marketplace.domain.loans.calendar import add_months
    from tests.ledger_helpers import deposit_entry, make_user

    engine = make_engine(f"sqlite:///{tmp_path / 'running.sqlite3'}")
    migrate.upgrade(engine, "0013")
    today = datetime.now(timezone.utc).date()
    start = add_months(today, -1) - timedelta(days=10)
    due = [add_months(start, k) for k in (1, 2, 3)]
    paid_on = due[0] + timedelta(days=5)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        borrower, _ = make_user(conn, "borrower")
        _, accounts = make_user(conn, "lender")
        ledger.post(conn, [deposit_entry(conn, accounts[AccountKind.USER_AVAILABLE], 7_000_000)])
        escrow = ledger.create_account(conn, "loan:1:escrow", AccountKind.LOAN_ESCROW)
        # The old rules' state after the part-payment: 1,000,000 msat paid 5 days into period 2 took the
        # interest accrued (20,254,353 x (1.02^(5/30) - 1) = 66,977 msat) and 933,023 msat of principal.
        principal_left = 30_000_000 - 9_802_647 - 933_023
        conn.execute(text(
            "INSERT INTO loans (id, borrower_id, amount_msat, purpose, story, annual_rate_bps, term_count, frequency,"
            " method, apr_bps, service_fee_bps, grade, status, delinquency, funded_msat, escrow_account_id,"
            " funding_deadline, created_at, start_date, max_days_past_due, prepayment, aprc_bps,"
            " principal_outstanding_msat, interest_accrued_msat, accrued_on) VALUES (1, :b, 30000000, 'farming',"
            " 'Seeds.', 2400, 3, 'monthly', 'annuity', 2400, 1000, 'C', 'active', 'current', 30000000, :e, :n, :n,"
            " :s, 0, 'reduce_term', 2682, :p, 0, :a)"),
            {"b": borrower, "e": escrow, "n": now, "s": start, "p": principal_left, "a": paid_on})
        # Installment 2 part-paid (its total fixed at the level, 10,402,647); 3 as the old projection left it.
        rows = [(1, 9_802_647, 600_000, 9_802_647, 600_000), (2, 10_402_647 - 66_977 - 334_000, 66_977 + 334_000,
                                                               933_023, 66_977),
                (3, 0, 0, 0, 0)]
        rows[2] = (3, principal_left - (rows[1][1] - 933_023), 206_000, 0, 0)
        for number, principal, interest, principal_paid, interest_paid in rows:
            conn.execute(text(
                "INSERT INTO installments (loan_id, number, due_date, principal_msat, interest_msat, late_fee_msat,"
                " principal_paid_msat, interest_paid_msat, late_fee_paid_msat) VALUES"
                " (1, :n, :d, :p, :i, 0, :pp, :ip, 0)"),
                {"n": number, "d": due[number - 1], "p": principal, "i": interest, "pp": principal_paid,
                 "ip": interest_paid})
    before = Database(str(engine.url))
    assert before.read(verify_ledger).ok
    before.dispose()

    migrate.upgrade(engine)
    database = Database(str(engine.url))
    assert database.read(verify_ledger).ok
    loan = database.read(lambda c: c.execute(select(loans).where(loans.c.id == 1)).one())
    assert (loan.principal_outstanding_msat, loan.interest_accrued_msat, loan.accrued_on) == (
        principal_left, 0, paid_on)
    assert loan.shared_cash_base_msat is None
    after = database.read(lambda c: c.execute(select(installments).where(installments.c.loan_id == 1)
                                              .order_by(installments.c.number)).all())
    assert [(r.principal_msat, r.interest_msat) for r in after[:1]] == [(9_802_647, 600_000)]
    second, third = after[1], after[2]
    assert second.principal_msat + second.interest_msat == 10_402_647  # part-paid: its total stays
    # Its interest: what was paid, plus simple interest on the principal owed from the payment to its date.
    days = (due[1] - paid_on).days
    assert second.interest_msat == 66_977 + principal_left * 2 * days // (100 * (due[1] - due[0]).days)
    # The last: everything left, with a whole period's 2 % on it.
    left = principal_left - (second.principal_msat - 933_023)
    assert (third.principal_msat, third.interest_msat) == (left, left * 2 // 100)
    database.dispose()
    engine.dispose()
