"""A lender's risk and return figures from their real holdings and ledger."""
from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pyxirr
from sqlalchemy import update

from marketplace.db.engine import Database
from marketplace.db.tables import journal_entries
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import analytics, loans as loan_service
from marketplace.settings import Settings
from portfolio import holding_risk
from portfolio.pd import horizon_pd
from tests.loans.test_fair_rules_in_the_books import disburse, repay
from tests.loans.test_lifecycle import funded_users


def test_lender_figures_come_from_their_notes_and_ledger(database: Database, settings: Settings) -> None:
    lenders_needed = 1
    borrowers = [funded_users(database, 0, 0)[0] for _ in range(4)]
    _, (lender,) = funded_users(database, lenders_needed, 200_000_000)
    loan_ids = []
    for borrower, count in zip(borrowers, (6, 12, 24, 36)):
        terms = LoanTerms(30_000_000, 2400, count, Frequency.MONTHLY, Method.ANNUITY)
        loan_id = loan_service.request_loan(database, settings, borrower, terms, "farming", "Seeds for the season.")
        loan_service.pledge(database, settings, lender, loan_id, 30_000_000)
        loan_ids.append(loan_id)
    start = date(2026, 1, 5)
    for borrower, loan_id in zip(borrowers[:2], loan_ids[:2]):
        disburse(database, loan_id, borrower, start)
    today = date(2026, 3, 5)
    _date_entries(database, "pledge", date(2026, 1, 5))
    empty = database.read(lambda c: analytics.lender_analytics(c, lender, today))
    assert empty.returns.realised_xirr == 0.0  # money out, the same value held: nothing earned yet
    assert empty.risk.holdings == 4 and empty.risk.exposure_msat == 120_000_000
    repay(database, loan_ids[0], borrowers[0], 11_000_000, date(2026, 2, 5))
    _date_entries(database, "repayment", date(2026, 2, 5))
    found = database.read(lambda c: analytics.lender_analytics(c, lender, today))
    r = found.risk
    # The same figures straight from the library, on the holdings as the notes state them, over 12 months:
    # the 24- and 36-month loans' term PDs turned into 12-month ones, the shorter ones kept.
    held = database.read(lambda c: analytics.holdings_of(c, lender, today))
    exposure = np.array([h.exposure_msat for h in held], dtype=float)
    term_pd = np.array([h.pd_ppm for h in held]) / 1e6
    pd = horizon_pd(term_pd, np.array([h.remaining_years * 12 for h in held]))
    assert list(pd[:2]) == list(term_pd[:2]) and all(pd[2:] < term_pd[2:])
    direct = holding_risk.holding_risk(exposure, pd, 0.9).figures
    assert r.exposure_msat == int(exposure.sum()) < 120_000_000 and r.method == "lattice"
    assert r.expected_loss_msat == int(direct.expected_loss[0]) and r.var99_msat == int(direct.var99[0])
    assert 0 < r.expected_loss_msat <= r.es99_msat and r.var95_msat <= r.var99_msat
    assert abs(r.effective_loans - 1 / sum((e / exposure.sum()) ** 2 for e in exposure)) < 1e-9
    assert sum(v for _, v in r.by_grade) == r.exposure_msat
    flows = [(date(2026, 1, 5), -120_000_000), (date(2026, 2, 5), found.returns.flows[1][1]),
             (today, r.exposure_msat)]
    assert list(found.returns.flows) == flows[:2]
    expected = pyxirr.xirr([d for d, _ in flows], [float(a) for _, a in flows])
    assert found.returns.realised_xirr is not None and abs(found.returns.realised_xirr - expected) < 1e-9
    assert found.returns.realised_xirr > 0
    assert len(found.spread.counts) == len(found.spread.prob_losing_ppm)
    assert found.spread.prob_losing_ppm[0] > found.spread.prob_losing_ppm[-1]  # spreading helps


def _date_entries(database: Database, kind: str, day: date) -> None:
    """Tests only: as if the entries of this kind had been posted on `day` (the ledger stamps wall time)."""
    moment = int(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp()) * 10**6
    database.run(lambda c: c.execute(update(journal_entries).where(journal_entries.c.kind == kind)
                                     .values(posted_at_us=moment)))


def test_the_memo_reuses_figures_only_while_their_inputs_are_the_same(database: Database, settings: Settings) -> None:
    borrowers = [funded_users(database, 0, 0)[0] for _ in range(2)]
    _, (lender,) = funded_users(database, 1, 100_000_000)
    loan_ids, note_ids = [], []
    for borrower in borrowers:
        terms = LoanTerms(30_000_000, 2400, 6, Frequency.MONTHLY, Method.ANNUITY)
        loan_id = loan_service.request_loan(database, settings, borrower, terms, "farming", "Seeds for the season.")
        note_ids.append(loan_service.pledge(database, settings, lender, loan_id, 20_000_000))
        loan_ids.append(loan_id)
    loan_service.pledge(database, settings, funded_users(database, 1, 20_000_000)[1][0], loan_ids[0], 10_000_000)
    disburse(database, loan_ids[0], borrowers[0], date(2026, 1, 5))
    today = date(2026, 3, 5)
    memo = analytics.AnalyticsMemo()

    def figures(on: date = today) -> analytics.LenderAnalytics:
        return database.read(lambda c: analytics.lender_analytics(c, lender, on, memo))

    first = figures()
    assert figures() is first and (memo.hits, memo.misses) == (1, 1)
    # A repayment changes the lender's flows and exposure: computed again, equal to a computation without memo.
    repay(database, loan_ids[0], borrowers[0], 11_000_000, date(2026, 2, 5))
    after = figures()
    assert after is not first and after.risk.exposure_msat < first.risk.exposure_msat
    assert after == database.read(lambda c: analytics.lender_analytics(c, lender, today))
    # Another day: the remaining terms (and so the expected return) move even with no write.
    assert figures(date(2026, 3, 6)) is not after
    # A pledge withdrawn by the lender: holdings change.
    loan_service.withdraw_pledge(database, lender, note_ids[1])
    assert figures().risk.holdings == 1 and memo.misses == 4
    # Another lender's figures are kept apart.
    _, (other,) = funded_users(database, 1, 10_000_000)
    assert database.read(lambda c: analytics.lender_analytics(c, other, today, memo)).risk.holdings == 0
    assert figures().risk.holdings == 1 and memo.hits == 2


def test_defaulted_and_written_off_notes_count_at_their_expected_recovery() -> None:
    def held(exposure: int, pd_ppm: int) -> analytics.Holding:
        return analytics.Holding(1, exposure, pd_ppm, "C", "farming", 180, 2400, 0.3, 6, "monthly", "annuity", 1000)

    # A live 10,000-sat note at its principal; a defaulted 5,000-sat one and 20,000 sat written off at 10 %.
    assert analytics.value_held([held(10_000_000, 50_000), held(5_000_000, 1_000_000)], 20_000_000) \
        == 10_000_000 + 500_000 + 2_000_000
    # XIRR of lending 35,000 sat a year ago and holding those notes: a loss, not the 0 % of full value.
    flows = [(date(2025, 3, 5), -35_000_000)]
    found = analytics._returns(flows, [held(10_000_000, 50_000), held(5_000_000, 1_000_000)], date(2026, 3, 5),
                               20_000_000)
    assert found.realised_xirr is not None and abs(found.realised_xirr - (12_500_000 / 35_000_000 - 1)) < 1e-6


def test_the_spread_curve_uses_what_the_schedule_pays() -> None:
    notes_ = [analytics.Holding(i, 2_000_000, 60_000, "C", "farming", 84, 2100, 0.2, 12, "weekly", "annuity", 1000)
              for i in range(3)]
    spread = analytics.spread_of(notes_)
    assert 0.02 < spread.return_if_repaid < 0.03  # the schedule's 2.4 % after the fee, not 21 % x 84 / 365 = 4.8 %
    # With a 6 % chance of default and ~48 % lost on one, 10 notes lose money far more often than 3.75 %.
    assert spread.prob_losing_ppm[SPREAD_TEN] > 200_000


SPREAD_TEN = analytics.SPREAD_COUNTS.index(10)
