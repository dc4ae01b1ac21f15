"""Days past due drive the loan's state; late fees are assessed once; PAR counts whole loans."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.allocation import InstallmentState
from marketplace.domain.loans.delinquency import (
    DelinquencyPolicy,
    LoanRisk,
    LoanState,
    assess_late_fees,
    days_past_due,
    late_fees_due,
    loan_state,
    par_bps,
    portfolio_at_risk,
    ratio_bps,
)

DUE = date(2026, 1, 10)
POLICY = DelinquencyPolicy(grace_days=15, default_after_days=60, write_off_after_days=120)


def _installments() -> list[InstallmentState]:
    return [
        InstallmentState(1, DUE, 100_000, 2_000, 0, 0, 0, 0),
        InstallmentState(2, DUE + timedelta(days=30), 100_000, 1_000, 0, 0, 0, 0),
    ]


def _day(n: int) -> date:
    return DUE + timedelta(days=n)


def _dpd(installments: list[InstallmentState], day: int) -> int:
    return days_past_due(installments, _day(day))


def test_days_past_due_counts_from_the_oldest_unpaid_installment() -> None:
    installments = _installments()
    assert days_past_due(installments, _day(-1)) == 0
    assert days_past_due(installments, _day(0)) == 0  # due today is not late yet
    assert days_past_due(installments, _day(1)) == 1
    assert days_past_due(installments, _day(45)) == 45
    paid_first = [installments[0]._replace(principal_paid_msat=100_000, interest_paid_msat=2_000), installments[1]]
    assert days_past_due(paid_first, _day(45)) == 15
    partly = [installments[0]._replace(principal_paid_msat=99_999, interest_paid_msat=2_000), installments[1]]
    assert days_past_due(partly, _day(45)) == 45


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (0, LoanState.CURRENT),
        (1, LoanState.GRACE),
        (15, LoanState.GRACE),
        (16, LoanState.LATE),
        (60, LoanState.LATE),
        (61, LoanState.DEFAULTED),
        (120, LoanState.DEFAULTED),
        (121, LoanState.WRITTEN_OFF),
    ],
)
def test_thresholds(day: int, expected: LoanState) -> None:
    assert loan_state(_dpd(_installments(), day), POLICY, LoanState.CURRENT) == expected


def test_a_loan_walks_through_every_state_as_days_pass() -> None:
    installments = _installments()
    state = LoanState.CURRENT
    seen: list[LoanState] = []
    for day in range(0, 130):
        state = loan_state(_dpd(installments, day), POLICY, state)
        # Idempotent: the daily job may run twice on the same day.
        assert loan_state(_dpd(installments, day), POLICY, state) == state
        if not seen or seen[-1] != state:
            seen.append(state)
    assert seen == [LoanState.CURRENT, LoanState.GRACE, LoanState.LATE, LoanState.DEFAULTED, LoanState.WRITTEN_OFF]


def test_late_loans_recover_but_defaulted_ones_do_not_until_repaid() -> None:
    installments = _installments()
    assert loan_state(_dpd(installments, 20), POLICY, LoanState.GRACE) == LoanState.LATE
    caught_up = [installments[0]._replace(principal_paid_msat=100_000, interest_paid_msat=2_000), installments[1]]
    assert loan_state(_dpd(caught_up, 20), POLICY, LoanState.LATE) == LoanState.CURRENT
    # Catching up after default leaves the loan defaulted (only repaying it in full, which the
    # aging pass checks first, or a write-off ends that).
    assert loan_state(_dpd(caught_up, 29), POLICY, LoanState.DEFAULTED) == LoanState.DEFAULTED
    # A defaulted loan that stays unpaid is still written off.
    assert loan_state(_dpd(installments, 121), POLICY, LoanState.DEFAULTED) == LoanState.WRITTEN_OFF


def test_terminal_states_stay() -> None:
    installments = _installments()
    assert loan_state(_dpd(installments, 0), POLICY, LoanState.WRITTEN_OFF) == LoanState.WRITTEN_OFF
    assert loan_state(_dpd(installments, 200), POLICY, LoanState.REPAID) == LoanState.REPAID


def test_late_fees_are_assessed_once_when_leaving_grace() -> None:
    policy = DelinquencyPolicy(late_fee_bps=500, late_fee_flat_msat=1_000)
    installments = _installments()
    assert late_fees_due(installments, _day(15), policy) == []  # still in grace
    # 5 % of 102,000 unpaid, plus 1,000 flat.
    due = late_fees_due(installments, _day(16), policy)
    assert due == [(1, 5_100 + 1_000)]
    assessed = assess_late_fees(installments, due)
    assert late_fees_due(assessed, _day(16), policy) == []
    assert late_fees_due(assessed, _day(17), policy) == []
    # The second installment leaves grace later and gets its own fee once.
    due = late_fees_due(assessed, _day(46), policy)
    assert due == [(2, 5_050 + 1_000)]
    assessed = assess_late_fees(assessed, due)
    assert late_fees_due(assessed, _day(100), policy) == []
    with pytest.raises(InvalidInput, match="already has a late fee"):
        assess_late_fees(assessed, [(1, 5)])


def test_late_fee_rounds_down_and_skips_paid_or_zero_fees() -> None:
    policy = DelinquencyPolicy(late_fee_bps=1)
    # 1 bp of 19,999 msat is 1.9999 msat -> 1 (never rounded against the borrower); of 9,999 msat -> 0,
    # and a 0 fee is never listed.
    some = [InstallmentState(1, DUE, 19_999, 0, 0, 0, 0, 0)]
    assert late_fees_due(some, _day(16), policy) == [(1, 1)]
    under = [InstallmentState(1, DUE, 9_999, 0, 0, 0, 0, 0)]
    assert late_fees_due(under, _day(16), policy) == []
    paid = [InstallmentState(1, DUE, 19_999, 0, 0, 19_999, 0, 0)]
    assert late_fees_due(paid, _day(16), policy) == []
    assert late_fees_due(some, _day(16), DelinquencyPolicy()) == []  # no fee configured


def test_portfolio_at_risk_counts_the_whole_principal_of_late_loans() -> None:
    loans = [
        LoanRisk(1, 1_000_000, 0),
        LoanRisk(2, 3_000_000, 31),  # only one small installment overdue, all of it at risk
        LoanRisk(3, 500_000, 5),
        LoanRisk(4, 500_000, 30),  # exactly 30 days: not more than 30
    ]
    assert portfolio_at_risk(loans, 30) == (3_000_000, 5_000_000)
    assert par_bps(loans, 30) == 6000
    assert portfolio_at_risk(loans, 1) == (4_000_000, 5_000_000)
    assert par_bps(loans, 1) == 8000
    assert par_bps([], 30) == 0
    assert ratio_bps(1, 3) == 3333
    assert ratio_bps(2, 3) == 6667
    assert ratio_bps(1, 20_000) == 1  # 0.5 bp rounds half-up


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(InvalidInput):
        DelinquencyPolicy(grace_days=70, default_after_days=60)
    with pytest.raises(InvalidInput):
        DelinquencyPolicy(default_after_days=130, write_off_after_days=120)
    with pytest.raises(InvalidInput):
        DelinquencyPolicy(late_fee_bps=-1)
