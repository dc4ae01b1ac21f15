"""What a person's dashboard leads with: their money and the next useful step (read-only, one connection).

A lender: the balances, whether to deposit, fund or set auto-invest, what auto-invest bought, the latest
repayments shared to them. A borrower: the next amount due across their loans (one "Pay" away) and the
state of each of their requests; nothing that is not theirs.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Connection, func, select

from marketplace.db import ledger
from marketplace.db.tables import autoinvest_orders
from marketplace.domain.journal import AccountKind
from marketplace.domain.autoinvest import Rules
from marketplace.services import autoinvest, statements
from marketplace.services.loan_views import BorrowerLoan, borrower_summary, lender_portfolio
from marketplace.settings import Settings

RECENT = 5


@dataclass(frozen=True)
class Money:
    available_msat: int
    reserved_msat: int
    pending_msat: int


def money_of(conn: Connection, user_id: int) -> Money:
    found = ledger.user_balances(conn, user_id)
    return Money(found.get(AccountKind.USER_AVAILABLE, 0), found.get(AccountKind.USER_RESERVED, 0),
                 found.get(AccountKind.USER_PENDING_OUT, 0))


@dataclass(frozen=True)
class LenderDashboard:
    money: Money
    notes_count: int
    lent_msat: int  # principal paid out to borrowers through their notes
    outstanding_msat: int
    earned_msat: int
    rules: Rules | None
    autoinvest_bought: int
    autoinvest_bought_msat: int
    recent_repayments: tuple[statements.StatementLine, ...]
    note_min_msat: int

    @property
    def next_step(self) -> str:
        """'deposit' (nothing to lend), 'fund' (idle cash, auto-invest on), 'autoinvest' (idle cash, no rules)
        or 'done' (the money is at work)."""
        if self.money.available_msat < self.note_min_msat:
            return "deposit" if not self.notes_count and not self.money.reserved_msat else "done"
        if self.rules is None or not self.rules.enabled:
            return "autoinvest"
        return "fund"


def lender_dashboard(conn: Connection, settings: Settings, lender_id: int) -> LenderDashboard:
    portfolio = lender_portfolio(conn, lender_id, page=1, size=1)
    bought = conn.execute(select(func.count(), func.coalesce(func.sum(autoinvest_orders.c.amount_msat), 0))
                          .where(autoinvest_orders.c.lender_id == lender_id,
                                 autoinvest_orders.c.status == "bought")).one()
    # Repayments shared to this lender, newest first (the statement's own lines: a page of them is enough).
    page = statements.statement_page(conn, lender_id, 1, size=50)
    shared = tuple(line for line in page.lines if line.kind == "repayment" and line.amount_msat > 0)[:RECENT]
    return LenderDashboard(
        money=money_of(conn, lender_id), notes_count=portfolio.notes_total, lent_msat=portfolio.lent_msat,
        outstanding_msat=portfolio.principal_outstanding_msat,
        earned_msat=portfolio.interest_earned_msat - portfolio.losses_msat,
        rules=autoinvest.rules_of(conn, lender_id), autoinvest_bought=int(bought[0]),
        autoinvest_bought_msat=int(bought[1]), recent_repayments=shared,
        note_min_msat=settings.note_min_sat * 1000)


@dataclass(frozen=True)
class BorrowerDashboard:
    money: Money
    loans: tuple[BorrowerLoan, ...]
    next_due: BorrowerLoan | None  # the loan whose next installment falls due first
    limit_msat: int
    has_open_loan: bool
    now: datetime

    @property
    def requests(self) -> tuple[BorrowerLoan, ...]:
        """Requests not yet paid out or closed without a loan, newest first."""
        return tuple(row for row in self.loans if row.loan.status in ("funding", "funded"))

    @property
    def running(self) -> tuple[BorrowerLoan, ...]:
        return tuple(row for row in self.loans if row.loan.status in ("active", "written_off"))

    @property
    def closed(self) -> tuple[BorrowerLoan, ...]:
        return tuple(row for row in self.loans if row.loan.status in ("repaid", "expired", "lapsed"))


def borrower_dashboard(conn: Connection, settings: Settings, borrower_id: int, today: date) -> BorrowerDashboard:
    summary = borrower_summary(conn, settings, borrower_id, today)
    owing = [row for row in summary.loans if row.next_due is not None]
    first = min(owing, key=lambda row: (row.next_due[0] if row.next_due else today, row.loan.id), default=None)
    return BorrowerDashboard(money=money_of(conn, borrower_id), loans=summary.loans, next_due=first,
                             limit_msat=summary.limit_msat, has_open_loan=summary.has_open_loan,
                             now=datetime.now(timezone.utc))

