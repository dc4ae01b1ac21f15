"""The marketplace's own record, for anyone to read on the home page (no names, no single loan's detail).

* loans funded: loans paid out to their borrowers (active, repaid or written off), and their total;
* repaid on time: of the installments already due, the share settled in full by the due date;
* lenders' realised return: what note holders have earned (interest and late fees, after the service fee)
  minus the principal lost on written-off loans, over the principal they lent (not annualised: money
  actually received, not a projection).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, and_, case, func, select

from marketplace.db.tables import installments, loans, notes

PAID_OUT = ("active", "repaid", "written_off")


@dataclass(frozen=True)
class Figures:
    loans_funded: int
    funded_msat: int
    installments_due: int
    installments_on_time: int
    lent_msat: int
    earned_msat: int  # income minus losses; may be negative

    @property
    def on_time_bps(self) -> int | None:
        if not self.installments_due:
            return None
        return self.installments_on_time * 10_000 // self.installments_due

    @property
    def return_bps(self) -> int | None:
        if not self.lent_msat:
            return None
        # Rounded toward zero: the figure never looks better than it is.
        sign = -1 if self.earned_msat < 0 else 1
        return sign * (abs(self.earned_msat) * 10_000 // self.lent_msat)


def figures(conn: Connection, today: date) -> Figures:
    funded = conn.execute(select(func.count(), func.coalesce(func.sum(loans.c.amount_msat), 0))
                          .where(loans.c.status.in_(PAID_OUT))).one()
    due = conn.execute(
        select(func.count(),
               func.coalesce(func.sum(case((and_(installments.c.settled_on.is_not(None),
                                                 installments.c.settled_on <= installments.c.due_date), 1),
                                           else_=0)), 0))
        .select_from(installments.join(loans, loans.c.id == installments.c.loan_id))
        .where(loans.c.status.in_(PAID_OUT), installments.c.due_date < today)).one()
    money = conn.execute(
        select(func.coalesce(func.sum(notes.c.amount_msat), 0), func.coalesce(func.sum(notes.c.income_msat), 0),
               func.coalesce(func.sum(notes.c.loss_msat), 0))
        .where(notes.c.status.in_(("active", "repaid", "written_off")))).one()
    return Figures(loans_funded=int(funded[0]), funded_msat=int(funded[1]), installments_due=int(due[0]),
                   installments_on_time=int(due[1]), lent_msat=int(money[0]),
                   earned_msat=int(money[1]) - int(money[2]))
