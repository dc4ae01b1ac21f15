"""Beta-Binomial updates against hand-computed cases, the closed-form PD, the priors and first-request grades."""
from __future__ import annotations

import math

import numpy as np
import pytest

from portfolio import pd
from portfolio.errors import PortfolioInputError


def test_posterior_adds_failures_to_alpha_and_successes_to_beta() -> None:
    a, b = pd.posterior([2.0, 1.0], [30.0, 9.0], successes=[12.0, 0.0], failures=[1.0, 3.0])
    assert a.tolist() == [3.0, 4.0] and b.tolist() == [42.0, 9.0]


def test_evidence_counts_months_and_half_a_miss_for_late() -> None:
    # 26 weekly on time, 4 weekly late, 1 missed: (26 + 4) x 12/52 months; 1 + 4 x 0.5 failures.
    s, f = pd.evidence(26, 4, 1, pd.period_months("weekly"))
    assert s == pytest.approx(30 * 12 / 52) and f == pytest.approx(3.0)


def test_remaining_pd_matches_the_beta_geometric_by_hand() -> None:
    # Beta(1, 9): P(no miss in 2) = B(1, 11) / B(1, 9) = (1/11) / (1/9) = 9/11.
    assert pd.remaining_pd(1.0, 9.0, 2.0) == pytest.approx(1 - 9 / 11, rel=1e-12)
    # Beta(2, 3), n = 1: P(no miss) = E[1 - h] = 3/5.
    assert pd.remaining_pd(2.0, 3.0, 1.0) == pytest.approx(0.4, rel=1e-12)
    # Large counts stay accurate (betaln, not gamma ratios): Beta(1, 1e6), n = 10 -> 1 - 1e6/(1e6+10).
    assert pd.remaining_pd(1.0, 1e6, 10.0) == pytest.approx(1 - 1e6 / (1e6 + 10), rel=1e-9)


def test_remaining_pd_agrees_with_a_simulation() -> None:
    rng = np.random.default_rng(3)
    h = rng.beta(2.0, 40.0, 400_000)
    simulated = 1 - np.mean((1 - h) ** 6)
    assert pd.remaining_pd(2.0, 40.0, 6.0) == pytest.approx(simulated, abs=3e-3)


def test_priors_reproduce_the_published_rates_over_twelve_months() -> None:
    a, b = pd.grade_priors()
    rates = [pd.GRADE_BAD_RATE[g] for g in pd.GRADES]
    assert np.allclose(pd.remaining_pd(a, b, 12.0), rates, rtol=1e-9)
    assert list(pd.grade_of_pd(pd.remaining_pd(a, b, 12.0))) == list(pd.GRADES)
    assert np.all(np.diff(rates) > 0)


def test_forgetting_halves_old_evidence() -> None:
    a0, b0 = pd.grade_priors()
    a, b = pd.grade_posterior([2, 2], [10.0, 10.0], [1.0, 1.0], age_days=[0.0, 90.0], half_life_days=90.0)
    assert a[2] - a0[2] == pytest.approx(1.5) and b[2] - b0[2] == pytest.approx(15.0)
    assert np.allclose(a[[0, 1, 3, 4]], a0[[0, 1, 3, 4]])


def test_vectorised_over_a_million_borrowers() -> None:
    n = 1_000_000
    a, b = pd.posterior(np.full(n, 0.5), np.full(n, 40.0), np.arange(n) % 24, np.arange(n) % 3)
    p = pd.remaining_pd(a, b, 6.0)
    assert p.shape == (n,) and np.all((p > 0) & (p < 1))
    # More misses -> higher PD; more on-time months -> lower PD.
    assert p[3] < p[0] < p[1]  # (s, f) = (3, 0) < (0, 0) < (1, 1)


def test_a_good_record_improves_and_misses_worsen_the_grade() -> None:
    a0, b0 = pd.prior_for_rate(pd.POOLED_BAD_RATE)
    good = pd.remaining_pd(*pd.posterior(a0, b0, *pd.evidence(104, 0, 0, pd.period_months("weekly"))), 12.0)
    bad = pd.remaining_pd(*pd.posterior(a0, b0, *pd.evidence(20, 6, 1, pd.period_months("weekly"))), 12.0)
    base = pd.remaining_pd(a0, b0, 12.0)
    assert good < base < bad
    assert pd.grade_of_pd(good) < pd.grade_of_pd(bad)  # "A" < "E"


def test_first_requests_are_not_all_one_grade() -> None:
    amounts = np.array([20_000_000, 100_000_000, 100_000_000, 100_000_000, 5_000_000_000])
    counts = np.array([10, 26, 12, 52, 60])
    freqs = np.array(["weekly", "weekly", "monthly", "weekly", "monthly"])
    grades = pd.first_request_grade(amounts, counts, freqs)
    assert len(set(grades.tolist())) >= 3
    pds = pd.first_request_pd(amounts, counts, freqs)
    # Same term in months (12 monthly = 52 weekly) and amount -> same PD; longer or bigger -> higher.
    assert pds[2] == pytest.approx(pds[3])
    assert pds[0] < pds[1] < pds[2] < pds[4]
    assert pd.first_request_pd(200_000_000, 12, "monthly") > pds[2]


def test_expected_loss_is_pd_times_exposure_times_lgd() -> None:
    assert pd.expected_loss([0.1, 0.02], [1_000_000, 5_000_000], 0.9).tolist() == pytest.approx([90_000.0, 90_000.0])
    assert pd.expected_loss(0.1, 1000).item() == pytest.approx(100 * pd.LGD_DEFAULT)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pd.posterior(-1, 1, 0, 0), "positive"),
        (lambda: pd.remaining_pd(1, 1, -2), "not negative"),
        (lambda: pd.evidence(-1, 0, 0, 1), "negative"),
        (lambda: pd.first_request_pd(0, 10, "weekly"), "positive"),
        (lambda: pd.period_months("yearly"), "daily, weekly or monthly"),
        (lambda: pd.expected_loss(1.5, 10), "between 0 and 1"),
        (lambda: pd.forgetting_weights([1.0], 0.0), "half-life"),
    ],
)
def test_bad_input_is_refused_with_a_sentence(call: object, message: str) -> None:
    with pytest.raises(PortfolioInputError, match=message):
        call()  # type: ignore[operator]


def test_grade_bands_are_pd_bands() -> None:
    assert pd.grade_of_pd([0.0, 0.0149, 0.015, 0.05, 0.1, 0.5]).tolist() == ["A", "A", "B", "C", "D", "E"]
    assert math.isclose(pd.GRADE_BAD_RATE["E"], 160 / 1061)
