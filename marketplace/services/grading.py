"""Grades from repayment data: each loan's probability of default over its remaining term, and its grade.

The model is portfolio/pd.py's (a Beta-Binomial miss rate per month of
exposure, priors from a published loan book, closed-form term PD); this
module gathers the evidence from the database:

* a borrower's own record: every installment of theirs that fell due,
  counted on time (settled within the grace period), late (settled after
  it) or missed (unpaid past the default threshold, or on a written-off
  loan); installments still inside that window wait;
* the book's record per grade at origination: months repaid and defaults
  (one per defaulted loan) over every loan funded in the grade, which moves
  each grade's expected miss rate away from the published prior in
  proportion to how much evidence there is (credibility: the prior is worth
  300 loan-years; the "calibration" of the grade, realised over predicted).

A request is graded when it is made (its PD over the whole term) and every
open loan again by the daily job (over what is left of its term).
"""
from __future__ import annotations

from collections.abc import Sequence
import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import Connection, bindparam, case, delete, func, insert, select, update

from marketplace.db.tables import grade_calibration, installments, loans
from marketplace.domain.loans.calendar import Frequency
from marketplace.domain.loans.delinquency import DelinquencyPolicy
from portfolio import pd as pd_model

PPM = 1_000_000
GRADE_INDEX = {g: i for i, g in enumerate(pd_model.GRADES)}
OPEN = ("funding", "funded", "active")


@dataclass(frozen=True)
class Record:
    """Installment outcomes, in the model's units: months of exposure repaid, and misses."""

    successes_months: float = 0.0
    failures: float = 0.0


@dataclass(frozen=True)
class Grading:
    grade: str
    pd_ppm: int


def _months(frequency: str) -> float:
    return 12.0 / Frequency(frequency).periods_per_year


@dataclass
class _LoanTally:
    borrower: int
    grade: str  # at origination
    months: float = 0.0  # of installments paid
    late: int = 0  # installments paid after the grace period
    defaulted: bool = False


def _records(conn: Connection, as_of: date, policy: DelinquencyPolicy,
             borrower_ids: Sequence[int] | None = None) -> tuple[dict[int, Record], dict[str, Record]]:
    """(per borrower, per grade at origination) records from every installment that fell due by `as_of`.

    One default is one event: a loan with missed installments (unpaid past the default threshold, or
    written off) adds one failure however many installments it missed, to its borrower and to the grade
    it had when it was funded. Months of installments paid count as successes for both; a late payment
    is half a failure for the borrower only (it is not a default, and the grade's prior counts defaults).
    """
    query = (select(loans.c.id, loans.c.borrower_id, loans.c.origination_grade, loans.c.frequency,
                    loans.c.status, loans.c.max_days_past_due, installments.c.due_date, installments.c.settled_on,
                    installments.c.principal_msat, installments.c.principal_paid_msat,
                    installments.c.interest_msat, installments.c.interest_paid_msat,
                    installments.c.late_fee_msat, installments.c.late_fee_paid_msat)
             .select_from(installments.join(loans, loans.c.id == installments.c.loan_id))
             .where(installments.c.due_date <= as_of))
    if borrower_ids is not None:
        query = query.where(loans.c.borrower_id.in_(list(borrower_ids)))
    per_loan: dict[int, _LoanTally] = {}
    grace = timedelta(days=policy.grace_days)
    default_after = timedelta(days=policy.default_after_days)
    for r in conn.execute(query):
        unpaid = (r.principal_msat - r.principal_paid_msat + r.interest_msat - r.interest_paid_msat
                  + r.late_fee_msat - r.late_fee_paid_msat)
        tally = per_loan.setdefault(int(r.id), _LoanTally(int(r.borrower_id), str(r.origination_grade)))
        if unpaid == 0:
            if r.settled_on is not None:
                late = r.settled_on > r.due_date + grace
            else:  # settled before the day was recorded: the loan's worst lateness decides
                late = r.max_days_past_due > policy.grace_days
            tally.months += _months(r.frequency)
            tally.late += int(late)
        elif r.status == "written_off" or as_of - r.due_date > default_after:
            tally.defaulted = True
        # else: still inside the window where paying counts as late, not missed
    by_borrower: dict[int, list[float]] = {}
    by_grade: dict[str, list[float]] = {}
    for t in per_loan.values():
        mine = by_borrower.setdefault(t.borrower, [0.0, 0.0])
        mine[0] += t.months
        mine[1] += pd_model.LATE_WEIGHT * t.late + float(t.defaulted)
        book = by_grade.setdefault(t.grade, [0.0, 0.0])
        book[0] += t.months
        book[1] += float(t.defaulted)
    return ({k: Record(*v) for k, v in by_borrower.items()},
            {k: Record(*v) for k, v in by_grade.items()})


def calibration(by_grade: dict[str, Record]) -> np.ndarray:
    """Per grade A..E: the book's posterior miss rate over the published prior's (1 with no evidence).

    Credibility: the prior is worth GRADE_PRIOR_STRENGTH_MONTHS (300 loan-years), so a grade moves in
    proportion to how much of the book's own evidence it has (pd.grade_rate_bound per loan)."""
    index = np.array([GRADE_INDEX[g] for g in by_grade], dtype=np.int64)
    successes = np.array([r.successes_months for r in by_grade.values()])
    failures = np.array([r.failures for r in by_grade.values()])
    strength = pd_model.GRADE_PRIOR_STRENGTH_MONTHS
    alpha, beta = pd_model.grade_posterior(index, successes, failures, strength=strength)
    return pd_model.calibration_factor(alpha, beta, strength)


def _grade(amount_msat: int, months_left: float, record: Record, factors: np.ndarray) -> Grading:
    """The borrower's PD over `months_left`: prior for the amount, the grade's calibration, their record.

    Which grade's calibration applies is decided by the borrower's 12-month PD (before calibration), not by
    the PD over this term: the factor is then the same for every term, so the PD never falls as the term
    grows (a term-dependent factor made a 4-month request E and a 9-month one C)."""
    if months_left <= 0:
        return Grading("A", 0)
    band = Grading(*_pd(amount_msat, pd_model.PRIOR_HORIZON_MONTHS, record, 1.0))
    factor = float(factors[GRADE_INDEX[band.grade]])
    return Grading(*_pd(amount_msat, months_left, record, factor))


@functools.lru_cache(maxsize=65_536)
def _pd(amount_msat: int, months_left: float, record: Record, factor: float) -> tuple[str, int]:
    # Pure in its (hashable) arguments: the daily regrade of 10,000 requests sees few distinct ones.
    alpha, beta = pd_model.borrower_prior(amount_msat, calibration=factor)
    alpha, beta = pd_model.posterior(alpha, beta, record.successes_months, record.failures)
    pd = float(pd_model.remaining_pd(alpha, beta, months_left))
    return str(pd_model.grade_of_pd(pd)), int(round(pd * PPM))


def stored_calibration(conn: Connection) -> np.ndarray:
    """The factors the daily job last stored (1 for a grade without any yet)."""
    factors = np.ones(len(pd_model.GRADES))
    for grade, factor in conn.execute(select(grade_calibration.c.grade, grade_calibration.c.factor_ppm)):
        factors[GRADE_INDEX[str(grade)]] = int(factor) / PPM
    return factors


def grade_request(conn: Connection, borrower_id: int, amount_msat: int, count: int, frequency: str,
                  as_of: date, policy: DelinquencyPolicy) -> Grading:
    """A new request's grade and PD over its whole term: the prior for its terms and the borrower's record."""
    mine, _ = _records(conn, as_of, policy, [borrower_id])
    return _grade(amount_msat, count * _months(frequency), mine.get(borrower_id, Record()),
                  stored_calibration(conn))


def store_calibration(conn: Connection, as_of: date, by_grade: dict[str, Record], factors: np.ndarray) -> None:
    counts = {str(g): (int(n), int(d or 0)) for g, n, d in conn.execute(
        select(loans.c.origination_grade, func.count(),
               func.sum(case((loans.c.defaulted_on.is_not(None), 1), else_=0)))
        .where(loans.c.status.in_(("active", "repaid", "written_off"))).group_by(loans.c.origination_grade))}
    conn.execute(delete(grade_calibration))
    conn.execute(insert(grade_calibration), [
        {"grade": g, "successes_months_milli": int(by_grade.get(g, Record()).successes_months * 1000),
         "failures_milli": int(by_grade.get(g, Record()).failures * 1000),
         "factor_ppm": int(round(float(factors[i]) * PPM)), "loans": counts.get(g, (0, 0))[0],
         "defaulted": counts.get(g, (0, 0))[1] or 0, "updated_on": as_of}
        for i, g in enumerate(pd_model.GRADES)])


def regrade_open_loans(conn: Connection, as_of: date, policy: DelinquencyPolicy) -> int:
    """The daily job: every open loan's PD over what is left of its term, and its grade; how many changed."""
    open_loans = conn.execute(select(loans.c.id, loans.c.borrower_id, loans.c.amount_msat, loans.c.term_count,
                                     loans.c.frequency, loans.c.status, loans.c.grade, loans.c.pd_ppm,
                                     loans.c.principal_outstanding_msat, loans.c.delinquency)
                              .where(loans.c.status.in_(OPEN))).all()
    by_borrower, by_grade = _records(conn, as_of, policy)
    factors = calibration(by_grade)
    store_calibration(conn, as_of, by_grade, factors)
    left: dict[int, int] = {}
    for loan_id, count in conn.execute(
            select(installments.c.loan_id, installments.c.number)
            .where(installments.c.loan_id.in_([r.id for r in open_loans if r.status == "active"]),
                   installments.c.due_date > as_of)):
        left[int(loan_id)] = left.get(int(loan_id), 0) + 1
    changes = []
    for r in open_loans:
        if r.delinquency == "defaulted":
            graded = Grading(pd_model.GRADES[-1], PPM)  # it has happened
        else:
            # Past its last due date with something still owed, at least one more period is at stake.
            count = max(left.get(int(r.id), 0), 1) if r.status == "active" else int(r.term_count)
            amount = int(r.principal_outstanding_msat) if r.status == "active" else int(r.amount_msat)
            graded = _grade(max(amount, 1), count * _months(r.frequency),
                            by_borrower.get(int(r.borrower_id), Record()), factors)
        if (graded.grade, graded.pd_ppm) != (r.grade, int(r.pd_ppm)):
            changes.append({"l_id": int(r.id), "g": graded.grade, "p": graded.pd_ppm})
    if changes:
        conn.execute(update(loans).where(loans.c.id == bindparam("l_id"))
                     .values(grade=bindparam("g"), pd_ppm=bindparam("p")), changes)
    return len(changes)


LGD_PPM = 900_000  # loss given default: portfolio.pd.LGD_DEFAULT (90 %)


def expected_loss_msat(pd_ppm: int, exposure_msat: int) -> int:
    """PD x exposure x LGD, rounded down to the msat (integers: shown and summed exactly)."""
    return pd_ppm * exposure_msat * LGD_PPM // 10**12


@dataclass(frozen=True)
class PriceGuidance:
    grade: str
    pd_ppm: int
    expected_loss_msat: int
    funded: int  # loans of this grade funded in the last PRICE_WINDOW_DAYS
    median_rate_bps: int | None


PRICE_WINDOW_DAYS = 180


def price_guidance(conn: Connection, grade: str, pd_ppm: int, amount_msat: int, now: datetime) -> PriceGuidance:
    """What a borrower sees before asking: the request's grade, PD and EL, and the rates lenders funded at."""
    rates = sorted(int(r) for r in conn.execute(
        select(loans.c.annual_rate_bps).where(
            loans.c.origination_grade == grade, loans.c.funded_at.is_not(None),
            loans.c.funded_at >= now - timedelta(days=PRICE_WINDOW_DAYS))).scalars())
    median = rates[len(rates) // 2] if rates else None
    return PriceGuidance(grade, pd_ppm, expected_loss_msat(pd_ppm, amount_msat), len(rates), median)
