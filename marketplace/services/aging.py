"""The daily aging pass over active loans, inside one transaction; safe to run any number of times."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import Connection, insert, select, update

from marketplace.db import loans
from marketplace.db.write_offs import pay_out_remainders
from marketplace.db.tables import job_runs, notes
from marketplace.db.tables import loans as loans_table
from marketplace.domain.errors import Conflict
from marketplace.domain.loans.allocation import assess, refresh
from marketplace.domain.loans.delinquency import DelinquencyPolicy, LoanState, late_fees_due, loan_state
from marketplace.domain.messages import N_


def record_run(conn: Connection, name: str, as_of: date) -> None:
    """Remember the day a job ran for; refuse a day before the last one (it would undo nothing and confuse)."""
    last = conn.execute(select(job_runs.c.last_as_of).where(job_runs.c.name == name).with_for_update()).scalar()
    now = datetime.now(timezone.utc)
    if last is None:
        conn.execute(insert(job_runs).values(name=name, last_as_of=as_of, ran_at=now))
        return
    if as_of < last:
        raise Conflict(N_("The %(name)s job last ran for %(last)s; it cannot run for an earlier day (%(day)s).",
                          name=name, last=last.isoformat(), day=as_of.isoformat()))
    conn.execute(update(job_runs).where(job_runs.c.name == name).values(last_as_of=as_of, ran_at=now))


def age_all(conn: Connection, policy: DelinquencyPolicy, as_of: date) -> tuple[int, int, int, int, int]:
    """(loans checked, loans whose state changed, late fees assessed, loans written off, loans repaid)."""
    # Written off before their remainders were paid out at the write-off (before issue 18): pay them now.
    for loan_id in conn.execute(select(loans_table.c.id).where(loans_table.c.status == "written_off",
                                                               loans_table.c.shared_cash_base_msat.is_(None))
                                ).scalars().all():
        pay_out_remainders(conn, int(loan_id))
    active = loans.list_loans(conn, status=("active",), limit=1_000_000)
    if not active:
        return 0, 0, 0, 0, 0
    states = loans.loan_states(conn, active)
    changed = fees_assessed = written_off = repaid = 0
    for loan in active:
        before = states[loan.id]
        fees = late_fees_due(before.behind(as_of), as_of, policy)
        after = assess(before, fees, as_of) if fees else refresh(before, as_of)
        if after.installments != before.installments:
            loans.save_installments(conn, loan.id, before.installments, after.installments)
        fees_assessed += len(fees)
        dpd = after.days_past_due(as_of)
        state = LoanState.REPAID if after.is_repaid else loan_state(dpd, policy, LoanState(loan.delinquency))
        values: dict[str, object] = {}
        if dpd > loan.max_days_past_due:
            values["max_days_past_due"] = dpd
        if state is LoanState.WRITTEN_OFF:
            values.update(status="written_off", delinquency="defaulted", closed_on=as_of,
                          defaulted_on=loan.defaulted_on or as_of)
            conn.execute(update(notes).where(notes.c.loan_id == loan.id, notes.c.status == "active")
                         .values(status="written_off", loss_msat=notes.c.principal_outstanding_msat))
            # Interest stops today: the installments still to come carry none beyond it.
            stopped = after.written_off(as_of)
            if stopped.installments != after.installments:
                loans.save_installments(conn, loan.id, after.installments, stopped.installments)
            written_off += 1
        elif state is LoanState.REPAID:
            # Nothing owed (say, the last late fee was paid): the loan is repaid.
            values.update(status="repaid", delinquency="current", closed_on=as_of)
            conn.execute(update(notes).where(notes.c.loan_id == loan.id, notes.c.status == "active")
                         .values(status="repaid"))
            repaid += 1
        elif state.value != loan.delinquency:
            values["delinquency"] = state.value
            if state is LoanState.DEFAULTED and loan.defaulted_on is None:
                values["defaulted_on"] = as_of
        if "status" in values or "delinquency" in values:
            changed += 1
        if values:
            loans.set_loan(conn, loan.id, **values)
        if state is LoanState.WRITTEN_OFF:
            pay_out_remainders(conn, loan.id)
    return len(active), changed, fees_assessed, written_off, repaid
