"""Ahead of the schedule's principal is never late, in the books: no late fee, no lateness, no late notice (issue 18).

50,000 sat at 60 % over 36 months: two installments paid on the first day are almost all principal (the
interest to date went with the first), so the borrower owes less principal than the schedule leaves after
installment 3 — and after 4, 5, 6 — though installment 3 is unpaid past its date and beyond the grace period.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from marketplace.db import loans
from marketplace.db.engine import Database
from marketplace.db.tables import outbox
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.services.reminders import queue_reminders
from marketplace.settings import Settings
from tests.loans.test_fair_rules_in_the_books import disburse, funded_loan, repay


def test_a_borrower_ahead_of_the_schedules_principal_is_not_late_charged_or_warned(database: Database,
                                                                                   settings: Settings) -> None:
    terms = LoanTerms(50_000_000, 6000, 36, Frequency.MONTHLY, Method.ANNUITY)
    borrower, loan_id, _ = funded_loan(database, settings, terms, [50_000_000])
    start = date(2026, 1, 10)
    disburse(database, loan_id, borrower, start)
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    for _ in range(2):  # what is shown as next due, twice, on the first day
        due = state.next_due(start)
        assert due is not None
        repay(database, loan_id, borrower, due[1], start)
        state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    assert [i.number for i in state.installments if i.is_paid] == [1, 2]
    third = state.installments[2]
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    # Well past installment 3's date and its grace period, with it unpaid:
    day = third.due_date + timedelta(days=settings.grace_days + 10)
    assert state.balance.principal_msat <= loan.contract.scheduled_principal_left[2]
    loan_service.age_loans(database, settings, day, today=day)
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    loan = database.read(lambda c: loans.get_loan(c, loan_id))
    assert third.due_date < day and not state.installments[2].is_paid
    assert loan.delinquency == "current" and state.days_past_due(day) == 0
    assert state.late_fees_unpaid_msat == 0
    database.run(lambda c: queue_reminders(c, day, settings))
    kinds = database.read(lambda c: c.execute(select(outbox.c.kind).where(outbox.c.user_id == borrower)).scalars()
                          .all())
    assert "late" not in kinds
    # Once the schedule's principal passes what is owed, the unpaid installment is late as any other.
    later = next(i.due_date for i in state.installments
                 if state.balance.principal_msat > loan.contract.scheduled_principal_left[i.number - 1])
    late_day = later + timedelta(days=settings.grace_days + 1)
    loan_service.age_loans(database, settings, late_day, today=late_day)
    state = database.read(lambda c: loans.loan_state(c, loans.get_loan(c, loan_id)))
    assert state.days_past_due(late_day) == (late_day - later).days
    assert database.read(lambda c: loans.get_loan(c, loan_id)).delinquency in ("late", "defaulted")
