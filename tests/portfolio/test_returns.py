"""XIRR against known cash flows, the batched Newton against pyxirr, the expected return by hand."""
from __future__ import annotations

import numpy as np
import pytest

from portfolio import returns
from portfolio.errors import PortfolioInputError


def test_xirr_of_one_year_at_ten_percent() -> None:
    assert returns.xirr(["2023-01-01", "2024-01-01"], [-1000.0, 1100.0]) == pytest.approx(0.10, abs=1e-9)


def test_xirr_matches_the_excel_documentation_example() -> None:
    # Microsoft's XIRR help page example: result 0.373362535 (37.34 %).
    dates = ["2008-01-01", "2008-03-01", "2008-10-30", "2009-02-15", "2009-04-01"]
    amounts = [-10000.0, 2750.0, 4250.0, 3250.0, 2750.0]
    assert returns.xirr(dates, amounts) == pytest.approx(0.373362535, abs=1e-8)


def test_xirr_is_none_when_flows_do_not_change_sign() -> None:
    assert returns.xirr(["2024-01-01", "2024-02-01"], [-10.0, -5.0]) is None


def test_batched_newton_agrees_with_pyxirr() -> None:
    rng = np.random.default_rng(4)
    m, t = 200, 40
    days = np.sort(rng.integers(1, 720, (m, t)), axis=1)
    days[:, 0] = 0
    amounts = rng.uniform(5, 50, (m, t))
    amounts[:, :5] = -rng.uniform(100, 200, (m, 5))
    batch = returns.xirr_batch(days, amounts)
    start = np.datetime64("2024-01-01")
    for k in range(0, m, 20):
        one = returns.xirr(start + days[k].astype("timedelta64[D]"), amounts[k])
        assert batch[k] == pytest.approx(one, rel=1e-7)  # pyxirr stops at ~1e-9
    assert np.isnan(returns.xirr_batch([0, 10], [[1.0, 2.0]]))[0]


def test_expected_annual_return_by_hand() -> None:
    # 1000 at 20 % for half a year, PD 10 %, LGD 0.9: interest 1000*0.2*0.5*0.9 = 90, loss 90 -> 0.
    assert returns.expected_annual_return([1000.0], 0.2, 0.5, 0.1, 0.9) == pytest.approx(0.0, abs=1e-12)
    # Two notes, no defaults: the exposure-weighted rate.
    assert returns.expected_annual_return([1000.0, 3000.0], [0.1, 0.2], 1.0, 0.0) == pytest.approx(0.175)


def test_a_repaid_note_earns_the_schedules_interest_after_the_fee_not_rate_times_term() -> None:
    from portfolio.returns import note_outcomes

    # 21 % a year over 12 weekly installments: an annuity pays ~2.6 % of the note in interest, 2.4 % after a
    # 10 % fee -- not 21 % x 12 / 52 = 4.8 % (rate x full term, what the curve used to assume).
    repaid, lost = note_outcomes(0.21, 12, 52, "annuity", 0.10, 0.9)
    i = 0.21 / 52
    payment = i / (1 - (1 + i) ** -12)
    assert abs(repaid - (12 * payment - 1) * 0.9) < 1e-12
    assert 0.02 < repaid < 0.03 < 0.21 * 12 / 52
    # A default after k of 12 installments (k = 0..11 equally likely) loses 90 % of what was left less interest.
    assert 0.4 < lost < 0.9
    flat, flat_lost = note_outcomes(0.12, 4, 12, "equal_principal", 0.0, 0.9)
    assert abs(flat - 0.01 * (1 + 0.75 + 0.5 + 0.25)) < 1e-12
    assert abs(flat_lost - np.mean([0.9 * (1 - k / 4) - 0.01 * sum(1 - j / 4 for j in range(k)) for k in range(4)])) \
        < 1e-12
    with pytest.raises(PortfolioInputError):
        note_outcomes(0.1, 0, 12, "annuity", 0.1)
