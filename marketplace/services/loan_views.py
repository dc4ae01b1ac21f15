"""Read models for the loan pages: what a page shows, assembled in one read transaction.

Every function takes a Connection (call it through `lightning_calls.reading`)
and returns plain frozen dataclasses the templates read. Nothing here writes.
Funders are shown as per-loan pseudonyms ("Lender #3"), never by email or id.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from datetime import date, datetime, timezone

from sqlalchemy import Connection, case, func, select

from marketplace.db import ledger, loans
from marketplace.db.engine import Database
from marketplace.db.loans import LOAN_COLUMNS, NOTE_COLUMNS, LoanRow, NoteRow, loan_from
from marketplace.db.outgoing import OutgoingRow
from marketplace.db.tables import loans as loans_table
from marketplace.db.tables import notes as notes_table
from marketplace.db.tables import outgoing_payments, repayments
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.allocation import InstallmentState, LoanState, refresh
from marketplace.domain.loans.delinquency import LoanRisk, par_bps, portfolio_at_risk
from marketplace.domain.loans.limits import borrower_max_msat
from marketplace.domain.loans.schedules import Schedule
from marketplace.services.grading import expected_loss_msat
from marketplace.services.loans import limits_of, schedule_of
from marketplace.settings import Settings

PAGE_SIZE = 50
ALL_NOTE_STATUSES = ("pledged", "active", "repaid", "written_off")
# Loans whose schedule is real (installment rows exist).
SCHEDULED_STATUSES = ("active", "repaid", "written_off")


def percent_step(part: int, whole: int, step: int = 5) -> int:
    """part / whole as a whole percentage rounded DOWN to `step` (for a CSS width class)."""
    if whole <= 0:
        return 0
    pct = max(0, min(100, part * 100 // whole))
    return pct - pct % step


@dataclass(frozen=True)
class ScheduleLine:
    number: int
    due_date: date
    principal_msat: int
    interest_msat: int
    late_fee_msat: int
    paid_msat: int
    # '' before the loan starts; then paid, partial, late, due (the next one), upcoming.
    mark: str

    @property
    def total_msat(self) -> int:
        return self.principal_msat + self.interest_msat + self.late_fee_msat


@dataclass(frozen=True)
class Funder:
    label: str  # "Lender #3", the API's English; pages say it with `number` in the reader's language
    amount_msat: int
    is_you: bool
    number: int = 0


@dataclass(frozen=True)
class RepaymentLine:
    received_at: datetime
    received_msat: int
    applied_msat: int
    refund_msat: int
    service_fee_msat: int
    late_fee_msat: int
    interest_msat: int
    principal_msat: int


@dataclass(frozen=True)
class LoanView:
    loan: LoanRow
    borrower_name: str
    schedule: Schedule
    lines: tuple[ScheduleLine, ...]
    scheduled: bool  # the real schedule (disbursed), not a preview from today
    funded_pct: int  # rounded down to 5 %
    funders: tuple[Funder, ...]
    my_notes: tuple[NoteRow, ...]
    repayments: tuple[RepaymentLine, ...]
    next_due: tuple[date, int] | None
    payoff_msat: int
    principal_outstanding_msat: int
    interest_accrued_msat: int  # interest owed today, not yet paid
    days_past_due: int
    disbursement: OutgoingRow | None  # the latest disbursement attempt
    funding_open: bool  # status funding and the deadline not passed
    disclosed: Schedule  # what paying on every due date costs (the schedule shown at the request)

    @property
    def exposure_msat(self) -> int:
        """What the lenders stand to lose: principal outstanding once disbursed, else the amount asked."""
        return self.principal_outstanding_msat if self.scheduled else self.loan.amount_msat

    @property
    def expected_loss_msat(self) -> int:
        return expected_loss_msat(self.loan.pd_ppm, self.exposure_msat)

    @property
    def total_msat(self) -> int:
        return sum(line.total_msat for line in self.lines)

    @property
    def interest_msat(self) -> int:
        return sum(line.interest_msat for line in self.lines)


def _lines(states: Sequence[InstallmentState], as_of: date, behind: frozenset[int]) -> tuple[ScheduleLine, ...]:
    """The schedule as shown; an installment past its date is "late" only if the borrower is behind on it."""
    next_open = next((s.number for s in states if not s.is_paid and s.due_date >= as_of), None)
    result = []
    for s in states:
        paid = s.paid_msat
        if s.is_paid:
            mark = "paid"
        elif s.due_date < as_of:
            mark = "late" if s.number in behind else "due"
        elif s.number == next_open:
            mark = "due"
        elif paid:
            mark = "partial"
        else:
            mark = "upcoming"
        result.append(ScheduleLine(s.number, s.due_date, s.principal_msat, s.interest_msat, s.late_fee_msat,
                                   paid, mark))
    return tuple(result)


def _disbursement(conn: Connection, loan_id: int) -> OutgoingRow | None:
    columns = [outgoing_payments.c[name] for name in OutgoingRow.__dataclass_fields__]
    found = conn.execute(select(*columns).where(outgoing_payments.c.loan_id == loan_id,
                                                 outgoing_payments.c.purpose == "disbursement")
                         .order_by(outgoing_payments.c.id.desc()).limit(1)).one_or_none()
    if found is None:
        return None
    return OutgoingRow(**{name: getattr(found, name) for name in OutgoingRow.__dataclass_fields__})


def _repayment_line(row: dict[str, object]) -> RepaymentLine:
    moment = row["received_at"]
    assert isinstance(moment, datetime)
    return RepaymentLine(loans.aware(moment), *(int(str(row[k])) for k in (
        "received_msat", "applied_msat", "refund_msat", "service_fee_msat", "late_fee_msat", "interest_msat",
        "principal_msat")))


def loan_view(conn: Connection, loan_id: int, viewer_id: int, as_of: date,
              now: datetime | None = None) -> LoanView:
    """Everything the loan page shows, for `viewer_id` (their own notes are marked)."""
    moment = now or datetime.now(timezone.utc)
    loan = loans.get_loan(conn, loan_id)
    names = loans.display_names(conn, [loan.borrower_id])
    notes = loans.notes_of_loan(conn, loan_id, ALL_NOTE_STATUSES)
    order: dict[int, int] = {}
    amounts: dict[int, int] = {}
    for note in notes:  # in note order: the first lender to pledge is Lender #1
        order.setdefault(note.lender_id, len(order) + 1)
        amounts[note.lender_id] = amounts.get(note.lender_id, 0) + note.amount_msat
    funders = tuple(Funder(f"Lender #{order[lender]}", amounts[lender], lender == viewer_id, order[lender])
                    for lender in order)
    mine = tuple(n for n in loans.notes_of_lender(conn, viewer_id) if n.loan_id == loan_id)

    scheduled = loan.status in SCHEDULED_STATUSES and loan.accrued_on is not None
    state = loans.loan_state(conn, loan) if scheduled else None
    schedule = schedule_of(loan)
    accrued = 0
    if state is not None:
        owing = loan.status in ("active", "written_off")
        seen = refresh(state, as_of) if owing else state
        lines = _lines(seen.installments, as_of, frozenset(i.number for i in seen.behind(as_of)))
        due = seen.next_due(as_of) if owing else None
        payoff = seen.payoff_msat(as_of) if owing else 0
        principal_left = state.balance.principal_msat
        accrued = state.interest_to(as_of) if owing else 0
        dpd = seen.days_past_due(as_of) if loan.status == "active" else 0
    else:
        lines = tuple(ScheduleLine(i.number, i.due_date, i.principal_msat, i.interest_msat, 0, 0, "")
                      for i in schedule.installments)
        due, payoff, principal_left, dpd = None, 0, 0, 0
    history = tuple(_repayment_line(dict(r._mapping)) for r in conn.execute(
        select(repayments).where(repayments.c.loan_id == loan_id).order_by(repayments.c.id.desc())))
    # Only the borrower sees their own name: everyone else a pseudonym (a display name defaults to the
    # email's first part, and lenders never need to know who borrowed).
    shown = names.get(loan.borrower_id, "a borrower") if viewer_id == loan.borrower_id else \
        f"borrower #{loan.borrower_id}"
    return LoanView(
        loan=loan, borrower_name=shown, schedule=schedule, lines=lines,
        scheduled=state is not None, funded_pct=percent_step(loan.funded_msat, loan.amount_msat), funders=funders,
        my_notes=mine, repayments=history, next_due=due, payoff_msat=payoff,
        principal_outstanding_msat=principal_left, interest_accrued_msat=accrued, days_past_due=dpd,
        disbursement=_disbursement(conn, loan_id) if loan.status in ("funded", "active") else None,
        funding_open=loan.status == "funding" and loan.funding_deadline > moment,
        disclosed=schedule,
    )


def repayment_by_hash(conn: Connection, payment_hash: str | None) -> RepaymentLine | None:
    """What a paid repayment invoice did (None until the listener has credited it)."""
    if not payment_hash:
        return None
    found = conn.execute(select(repayments).where(repayments.c.payment_hash == payment_hash)).one_or_none()
    return None if found is None else _repayment_line(dict(found._mapping))


@dataclass(frozen=True)
class OpenRequest:
    loan: LoanRow
    funded_pct: int

    @property
    def left_msat(self) -> int:
        return self.loan.remaining_msat


@dataclass(frozen=True)
class OpenPage:
    requests: tuple[OpenRequest, ...]
    page: int
    has_more: bool


def open_requests(conn: Connection, page: int, now: datetime | None = None) -> OpenPage:
    """Requests still taking pledges (deadline not passed), newest first, PAGE_SIZE per page."""
    moment = now or datetime.now(timezone.utc)
    page = max(page, 1)
    rows = conn.execute(
        select(*LOAN_COLUMNS)
        .where(loans_table.c.status == "funding", loans_table.c.funding_deadline > moment)
        .order_by(loans_table.c.id.desc()).limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
    ).all()
    found = [loan_from(r) for r in rows]
    return OpenPage(tuple(OpenRequest(loan, percent_step(loan.funded_msat, loan.amount_msat))
                          for loan in found[:PAGE_SIZE]), page, len(found) > PAGE_SIZE)


@dataclass(frozen=True)
class BorrowerLoan:
    loan: LoanRow
    next_due: tuple[date, int] | None
    days_past_due: int


@dataclass(frozen=True)
class BorrowerSummary:
    loans: tuple[BorrowerLoan, ...]
    limit_msat: int  # the largest loan they may ask for now (0 after a default)
    has_open_loan: bool
    available_msat: int


def borrower_summary(conn: Connection, settings: Settings, borrower_id: int, as_of: date) -> BorrowerSummary:
    mine = loans.list_loans(conn, borrower_id=borrower_id, limit=1000)
    states = loans.loan_states(conn, [loan for loan in mine if loan.status == "active"])
    rows = tuple(
        BorrowerLoan(loan, states[loan.id].next_due(as_of) if loan.id in states else None,
                     states[loan.id].days_past_due(as_of) if loan.id in states else 0)
        for loan in mine)
    record = loans.borrower_record(conn, borrower_id, settings.grace_days)
    balances = ledger.user_balances(conn, borrower_id)
    return BorrowerSummary(rows, borrower_max_msat(record, limits_of(settings)), record.open_loans > 0,
                           balances[AccountKind.USER_AVAILABLE])


@dataclass(frozen=True)
class PortfolioNote:
    note: NoteRow
    loan: LoanRow


@dataclass(frozen=True)
class Portfolio:
    notes: tuple[PortfolioNote, ...]  # one page of them, newest first
    available_msat: int
    reserved_msat: int
    pledged_msat: int
    principal_outstanding_msat: int
    interest_earned_msat: int
    received_msat: int
    losses_msat: int
    by_state: tuple[tuple[str, int, int], ...]  # (note status, count, amount lent)
    lent_msat: int  # principal of every note paid out to a borrower (active, repaid or written off)
    notes_total: int = 0
    page: int = 1
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.notes_total // self.size))


def lender_portfolio(conn: Connection, lender_id: int, page: int = 1, size: int | None = PAGE_SIZE) -> Portfolio:
    """A lender's totals (in SQL, whatever the number of notes) and one page of their notes (`size` None: all)."""
    live = (notes_table.c.lender_id == lender_id, notes_table.c.status != "released")
    totals = conn.execute(select(
        func.coalesce(func.sum(case((notes_table.c.status == "pledged", notes_table.c.amount_msat), else_=0)), 0),
        func.coalesce(func.sum(case((notes_table.c.status == "active", notes_table.c.principal_outstanding_msat),
                                    else_=0)), 0),
        func.coalesce(func.sum(notes_table.c.income_msat), 0), func.coalesce(func.sum(notes_table.c.received_msat), 0),
        func.coalesce(func.sum(notes_table.c.loss_msat), 0),
        func.coalesce(func.sum(case((notes_table.c.status.in_(("active", "repaid", "written_off")),
                                     notes_table.c.amount_msat), else_=0)), 0),
    ).where(*live)).one()
    states = tuple((str(status), int(n), int(amount or 0)) for status, n, amount in conn.execute(
        select(notes_table.c.status, func.count(), func.sum(notes_table.c.amount_msat)).where(*live)
        .group_by(notes_table.c.status).order_by(notes_table.c.status)))
    total = sum(n for _, n, _ in states)
    page = max(page, 1)
    query = (select(*NOTE_COLUMNS, *[c.label(f"of_loan_{c.name}") for c in LOAN_COLUMNS])
             .select_from(notes_table.join(loans_table, loans_table.c.id == notes_table.c.loan_id))
             .order_by(notes_table.c.id.desc()))
    if size is None:
        query = query.where(*live)
    else:
        # The page's ids from the lender's index alone (lender, id, status), then those rows: asked for the
        # rows at once, PostgreSQL walked the whole table by id (98,000 rows for a 2,000-note lender).
        ids = select(notes_table.c.id).where(*live).order_by(notes_table.c.id.desc())
        query = query.where(notes_table.c.id.in_(ids.limit(size).offset((page - 1) * size)))
    listed = []
    for r in conn.execute(query).all():
        note = NoteRow(**{name: getattr(r, name) for name in NoteRow.__dataclass_fields__})
        loan = loan_from(SimpleNamespace(**{name: getattr(r, f"of_loan_{name}") for name in LoanRow.__dataclass_fields__}))
        listed.append(PortfolioNote(note, loan))
    balances = ledger.user_balances(conn, lender_id)
    return Portfolio(
        notes=tuple(listed), available_msat=balances[AccountKind.USER_AVAILABLE],
        reserved_msat=balances[AccountKind.USER_RESERVED], pledged_msat=int(totals[0]),
        principal_outstanding_msat=int(totals[1]), interest_earned_msat=int(totals[2]), received_msat=int(totals[3]),
        losses_msat=int(totals[4]), by_state=states, lent_msat=int(totals[5]), notes_total=total, page=page,
        size=size or max(total, 1))


@dataclass(frozen=True)
class LateLoan:
    loan: LoanRow
    borrower_name: str
    days_past_due: int
    principal_outstanding_msat: int


@dataclass(frozen=True)
class RiskReport:
    par1_bps: int
    par30_bps: int
    at_risk1_msat: int
    at_risk30_msat: int
    outstanding_msat: int
    active_count: int
    late: tuple[LateLoan, ...]


def risk_report(conn: Connection, as_of: date) -> RiskReport:
    """PAR1 and PAR30 over the active loans: the WHOLE outstanding principal of loans past due."""
    active = loans.list_loans(conn, status=("active",), limit=1_000_000)
    states = loans.loan_states(conn, active)
    risks = [LoanRisk(loan.id, states[loan.id].balance.principal_msat, states[loan.id].days_past_due(as_of))
             for loan in active]
    at_risk1, total = portfolio_at_risk(risks, 1)
    at_risk30, _ = portfolio_at_risk(risks, 30)
    late_risks = sorted((r for r in risks if r.days_past_due > 0), key=lambda r: (-r.days_past_due, r.loan_id))
    by_id = {loan.id: loan for loan in active}
    names = loans.display_names(conn, [by_id[r.loan_id].borrower_id for r in late_risks])
    late = tuple(LateLoan(by_id[r.loan_id], names.get(by_id[r.loan_id].borrower_id, "?"), r.days_past_due,
                          r.outstanding_principal_msat) for r in late_risks)
    return RiskReport(par_bps(risks, 1), par_bps(risks, 30), at_risk1, at_risk30, total, len(active), late)


def _loans_by_status(conn: Connection, status: str, limit: int, offset: int, now: datetime) -> list[LoanRow]:
    query = (select(*LOAN_COLUMNS).where(loans_table.c.status == status)
             .order_by(loans_table.c.id.desc()).limit(limit).offset(offset))
    if status == "funding":
        query = query.where(loans_table.c.funding_deadline > now)
    return [loan_from(r) for r in conn.execute(query)]


def loans_by_status(database: Database, status: str, limit: int, offset: int, now: datetime) -> list[LoanRow]:
    """Loans in `status`, newest first (funding: only those still open for funding at `now`)."""
    found: list[LoanRow] = database.read(lambda c: _loans_by_status(c, status, limit, offset, now))
    return found
