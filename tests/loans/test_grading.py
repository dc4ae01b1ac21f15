"""Grades from repayment data: first requests by their terms, then the borrower's own record and the book's."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from marketplace.db import loans
from marketplace.db.engine import Database
from marketplace.db.tables import grade_calibration
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.services.grading import grade_request
from marketplace.settings import Settings
from portfolio.pd import first_request_pd
from tests.loans.test_fair_rules_in_the_books import disburse, funded_loan, repay
from tests.loans.test_lifecycle import funded_users


def test_a_first_request_is_graded_by_its_own_terms(database: Database, settings: Settings) -> None:
    borrowers, _ = funded_users(database, 0, 0)
    del borrowers
    grades = {}
    for count, frequency in ((10, Frequency.WEEKLY), (12, Frequency.MONTHLY), (36, Frequency.MONTHLY)):
        borrower, _ = funded_users(database, 0, 0)
        terms = LoanTerms(50_000_000, 2400, count, frequency, Method.ANNUITY)
        loan_id = loan_service.request_loan(database, settings, borrower, terms, "business", "A longer story here.")
        loan = database.read(lambda c: loans.get_loan(c, loan_id))
        expected = float(first_request_pd(50_000_000, count, frequency.value))
        assert abs(loan.pd_ppm - expected * 1_000_000) <= 1 and loan.origination_pd_ppm == loan.pd_ppm
        grades[(count, frequency)] = loan.grade
    assert len(set(grades.values())) == 3  # not all C: a short loan is safer than a long one
    assert grades[(10, Frequency.WEEKLY)] < grades[(36, Frequency.MONTHLY)]


def test_the_borrowers_record_moves_the_next_grade(database: Database, settings: Settings) -> None:
    terms = LoanTerms(30_000_000, 2400, 3, Frequency.MONTHLY, Method.ANNUITY)
    policy = loan_service.policy_of(settings)
    good, good_loan, _ = funded_loan(database, settings, terms, [30_000_000])
    bad, bad_loan, _ = funded_loan(database, settings, terms, [30_000_000])
    start = date(2026, 1, 1)
    for borrower, loan_id in ((good, good_loan), (bad, bad_loan)):
        disburse(database, loan_id, borrower, start)
    # One pays every installment on its date; the other pays nothing for five months.
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, good_loan)))
    for inst in state.installments:
        repay(database, good_loan, good, inst.due_msat, inst.due_date)
    later = start + timedelta(days=150)
    fresh, _ = funded_users(database, 0, 0)
    ask = (30_000_000, 3, "monthly", later, policy)
    scores = database.read(lambda c: [grade_request(c, who, *ask).pd_ppm for who in (good, fresh, bad)])
    assert scores[0] < scores[1] < scores[2], scores
    # The daily job regrades open loans and stores what the book taught each grade.
    loan_service.age_loans(database, settings, later, today=later)
    stored = database.read(lambda c: c.execute(select(grade_calibration.c.grade, grade_calibration.c.factor_ppm)
                                               .order_by(grade_calibration.c.grade)).all())
    assert [g for g, _ in stored] == ["A", "B", "C", "D", "E"] and all(f > 0 for _, f in stored)
    after = database.read(lambda c: loans.get_loan(c, bad_loan))
    assert after.status in ("active", "written_off") and after.pd_ppm >= scores[2] // 2
