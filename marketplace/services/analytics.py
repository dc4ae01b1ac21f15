"""Risk and return figures for one lender's holdings and for the whole book (portfolio/ does the maths).

Exposure is what a note can still lose: the principal outstanding of an
active note, the amount of a pledged one (the money is committed). Each
loan's PD is the daily job's (grading.py); loss given default is 90 %.

Realised return is the XIRR of the lender's lending cash flows as the ledger
records them — money pledged to notes out, pledges released and repayment
shares in — with what they hold today (outstanding principal of active
notes, pledged amounts) as a final inflow at today's date: a money-weighted
return of the lending, deposits and withdrawals aside. Beside it, the
expected, loss-adjusted annual return of what they hold (interest at each
loan's rate on the outstanding principal less PD x LGD).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
from sqlalchemy import Connection, case, func, select

from marketplace.db import ledger
from marketplace.db.tables import accounts, journal_entries, journal_lines, loans, notes
from marketplace.domain.journal import AccountKind
from portfolio import returns, risk
from portfolio.pd import GRADES, LGD_DEFAULT

PPM = 1_000_000
SPREAD_COUNTS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
TERM_BUCKETS = ((31, "up to a month"), (92, "1-3 months"), (366, "3-12 months"), (10**6, "over a year"))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Holding:
    loan_id: int
    exposure_msat: int
    pd_ppm: int
    grade: str
    purpose: str
    term_days: int
    annual_rate_bps: int
    remaining_years: float


@dataclass(frozen=True)
class Risk:
    exposure_msat: int
    expected_loss_msat: int
    var95_msat: int
    es95_msat: int
    var99_msat: int
    es99_msat: int
    prob_any_loss_ppm: int
    hhi_ppm: int
    effective_loans: float
    largest_share_ppm: int
    by_grade: tuple[tuple[str, int], ...]
    by_purpose: tuple[tuple[str, int], ...]
    by_term: tuple[tuple[str, int], ...]
    histogram_edges_msat: tuple[float, ...]
    histogram_probabilities: tuple[float, ...]
    holdings: int


@dataclass(frozen=True)
class Returns:
    realised_xirr: float | None  # a fraction a year; None until there is a flow in and out
    expected_annual: float  # loss-adjusted, of current holdings
    flows: tuple[tuple[date, int], ...]  # the lender's lending cash flows, + in to the lender


@dataclass(frozen=True)
class Spread:
    counts: tuple[int, ...]
    prob_losing_ppm: tuple[int, ...]
    pd_ppm: int
    return_if_repaid: float


@dataclass(frozen=True)
class LenderAnalytics:
    risk: Risk
    returns: Returns
    spread: Spread


def _term_days(count: int, frequency: str) -> int:
    return count * {"daily": 1, "weekly": 7, "monthly": 30}[frequency]


def _bucket(days: int) -> str:
    return next(label for limit, label in TERM_BUCKETS if days <= limit)


def holdings_of(conn: Connection, lender_id: int | None, as_of: date) -> list[Holding]:
    """One lender's exposures by loan (or the whole book's with `lender_id` None)."""
    exposure = func.sum(notes.c.principal_outstanding_msat)
    query = (select(loans.c.id, exposure, loans.c.pd_ppm, loans.c.grade, loans.c.purpose, loans.c.term_count,
                    loans.c.frequency, loans.c.annual_rate_bps, loans.c.start_date)
             .select_from(notes.join(loans, loans.c.id == notes.c.loan_id))
             .where(notes.c.status.in_(("pledged", "active")))
             .group_by(loans.c.id, loans.c.pd_ppm, loans.c.grade, loans.c.purpose, loans.c.term_count,
                       loans.c.frequency, loans.c.annual_rate_bps, loans.c.start_date)
             .order_by(loans.c.id))
    if lender_id is not None:
        query = query.where(notes.c.lender_id == lender_id)
    result = []
    for r in conn.execute(query).all():  # fetched at once: row by row costs a driver call each
        term = _term_days(int(r.term_count), r.frequency)
        elapsed = (as_of - r.start_date).days if r.start_date else 0
        result.append(Holding(int(r.id), int(r[1] or 0), int(r.pd_ppm), r.grade, r.purpose, term,
                              int(r.annual_rate_bps), max(term - elapsed, 0) / 365.0))
    return [h for h in result if h.exposure_msat > 0]


def risk_of(held: Sequence[Holding]) -> Risk:
    if not held:
        return Risk(0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, (), (), (), (), (), 0)
    exposure = np.array([h.exposure_msat for h in held], dtype=np.float64)
    pd = np.array([h.pd_ppm for h in held], dtype=np.float64) / PPM
    figures = risk.quadrature_risk(exposure[None, :], pd, LGD_DEFAULT)
    hhi, effective, largest = risk.concentration(exposure[None, :])
    edges, probabilities = risk.book_loss_distribution(exposure, pd, LGD_DEFAULT, bins=30)

    def grouped(labels: Sequence[str], order: Sequence[str] | None = None) -> tuple[tuple[str, int], ...]:
        sums: dict[str, int] = {}
        for label, h in zip(labels, held):
            sums[label] = sums.get(label, 0) + h.exposure_msat
        keys = [k for k in (order or sorted(sums)) if k in sums]
        return tuple((k, sums[k]) for k in keys)

    return Risk(
        exposure_msat=int(exposure.sum()), expected_loss_msat=int(figures.expected_loss[0]),
        var95_msat=int(figures.var95[0]), es95_msat=int(figures.es95[0]), var99_msat=int(figures.var99[0]),
        es99_msat=int(figures.es99[0]), prob_any_loss_ppm=int(round(float(figures.prob_any_loss[0]) * PPM)),
        hhi_ppm=int(round(float(hhi[0]) * PPM)), effective_loans=float(effective[0]),
        largest_share_ppm=int(round(float(largest[0]) * PPM)),
        by_grade=grouped([h.grade for h in held], GRADES), by_purpose=grouped([h.purpose for h in held]),
        by_term=grouped([_bucket(h.term_days) for h in held], [label for _, label in TERM_BUCKETS]),
        histogram_edges_msat=tuple(float(e) for e in edges),
        histogram_probabilities=tuple(float(p) for p in probabilities), holdings=len(held))


def lending_flows(conn: Connection, lender_id: int) -> list[tuple[date, int]]:
    """The lender's lending cash flows by day, from their available balance: pledges out, releases and shares in."""
    available = ledger.account_id(conn, ledger.user_account_code(lender_id, AccountKind.USER_AVAILABLE))
    rows = conn.execute(
        select(journal_entries.c.posted_at_us, journal_lines.c.amount_msat, accounts.c.normal_side)
        .select_from(journal_lines.join(journal_entries, journal_entries.c.id == journal_lines.c.entry_id)
                     .join(accounts, accounts.c.id == journal_lines.c.account_id))
        .where(journal_lines.c.account_id == available,
               journal_entries.c.kind.in_(("pledge", "pledge_withdrawn", "request_expired", "request_lapsed",
                                           "repayment")))
        .order_by(journal_entries.c.id)).all()
    by_day: dict[date, int] = {}
    for posted_us, amount, side in rows:
        day = (_EPOCH + timedelta(microseconds=int(posted_us))).date()
        natural = -int(amount) if side == "credit" else int(amount)
        by_day[day] = by_day.get(day, 0) + natural
    return sorted(by_day.items())


def returns_of(conn: Connection, lender_id: int, held: Sequence[Holding], as_of: date) -> Returns:
    flows = lending_flows(conn, lender_id)
    value_now = sum(h.exposure_msat for h in held)
    cash = flows + ([(as_of, value_now)] if value_now else [])
    realised = None
    if any(a < 0 for _, a in cash) and any(a > 0 for _, a in cash) and len({d for d, _ in cash}) > 1:
        realised = returns.xirr(np.array([d.isoformat() for d, _ in cash], dtype="datetime64[D]"),
                                [float(a) for _, a in cash])
    expected = 0.0
    if held:
        expected = returns.expected_annual_return(
            [h.exposure_msat for h in held], [h.annual_rate_bps / 10_000 for h in held],
            [h.remaining_years for h in held], [h.pd_ppm / PPM for h in held], LGD_DEFAULT)
    return Returns(realised, expected, tuple(flows))


def spread_of(held: Sequence[Holding]) -> Spread:
    """How the chance of losing money falls with the number of equal notes, at this holding's average PD."""
    if held:
        weights = np.array([h.exposure_msat for h in held], dtype=np.float64)
        pd = float(np.average([h.pd_ppm / PPM for h in held], weights=weights))
        rate = float(np.average([h.annual_rate_bps / 10_000 * max(h.term_days, 1) / 365 for h in held],
                                weights=weights))
    else:
        pd, rate = 0.05, 0.05
    curve = risk.spread_curve(np.array(SPREAD_COUNTS), min(max(pd, 1e-6), 0.999), LGD_DEFAULT, max(rate, 0.0))
    return Spread(SPREAD_COUNTS, tuple(int(round(float(p) * PPM)) for p in curve), int(round(pd * PPM)), rate)


def lender_analytics(conn: Connection, lender_id: int, as_of: date) -> LenderAnalytics:
    held = holdings_of(conn, lender_id, as_of)
    return LenderAnalytics(risk_of(held), returns_of(conn, lender_id, held, as_of), spread_of(held))


@dataclass(frozen=True)
class GradeCalibration:
    grade: str
    loans: int
    defaulted: int
    predicted_pd_ppm: int  # mean PD at origination of these loans
    realised_ppm: int  # share of them that defaulted


def calibration_table(conn: Connection) -> list[GradeCalibration]:
    """Defaults by grade at origination: realised against predicted, over loans that were disbursed."""
    rows = {str(g): (int(n), int(d or 0), float(p or 0)) for g, n, d, p in conn.execute(
        select(loans.c.origination_grade, func.count(),
               func.sum(case((loans.c.defaulted_on.is_not(None), 1), else_=0)),
               func.avg(loans.c.origination_pd_ppm))
        .where(loans.c.status.in_(("active", "repaid", "written_off")))
        .group_by(loans.c.origination_grade))}
    table = []
    for grade in GRADES:
        n, d, p = rows.get(grade, (0, 0, 0.0))
        table.append(GradeCalibration(grade, n, d, int(round(p)), d * PPM // n if n else 0))
    return table
