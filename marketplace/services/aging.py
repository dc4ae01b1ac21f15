"""The daily aging pass over active loans, inside one transaction; safe to run any number of times."""
from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, update

from marketplace.db import loans
from marketplace.db.tables import notes
from marketplace.domain.loans.delinquency import (
    DelinquencyPolicy,
    LoanState,
    assess_late_fees,
    days_past_due,
    late_fees_due,
    loan_state,
)


def age_all(conn: Connection, policy: DelinquencyPolicy, as_of: date) -> tuple[int, int, int, int]:
    """(loans checked, loans whose state changed, late fees assessed, loans written off)."""
    active = loans.list_loans(conn, status=("active",), limit=1_000_000)
    if not active:
        return 0, 0, 0, 0
    states = loans.installment_states(conn, [loan.id for loan in active])
    changed = fees_assessed = written_off = 0
    for loan in active:
        before = states[loan.id]
        fees = late_fees_due(before, as_of, policy)
        after = assess_late_fees(before, fees) if fees else before
        if fees:
            loans.save_installments(conn, loan.id, before, after)
            fees_assessed += len(fees)
        dpd = days_past_due(after, as_of)
        state = loan_state(after, as_of, policy, LoanState(loan.delinquency))
        values: dict[str, object] = {}
        if dpd > loan.max_days_past_due:
            values["max_days_past_due"] = dpd
        if state is LoanState.WRITTEN_OFF:
            values.update(status="written_off", delinquency="defaulted", closed_on=as_of,
                          defaulted_on=loan.defaulted_on or as_of)
            conn.execute(update(notes).where(notes.c.loan_id == loan.id, notes.c.status == "active")
                         .values(status="written_off", loss_msat=notes.c.principal_outstanding_msat))
            written_off += 1
        elif state is LoanState.REPAID:
            values.update(status="repaid", delinquency="current", closed_on=as_of)
        elif state.value != loan.delinquency:
            values["delinquency"] = state.value
            if state is LoanState.DEFAULTED and loan.defaulted_on is None:
                values["defaulted_on"] = as_of
        if "status" in values or "delinquency" in values:
            changed += 1
        if values:
            loans.set_loan(conn, loan.id, **values)
    return len(active), changed, fees_assessed, written_off
