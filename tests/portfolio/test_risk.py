"""The quadrature agrees with Monte Carlo within the simulation's own error; concentration and groups by hand."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from portfolio import risk
from portfolio.errors import PortfolioInputError

SCENARIOS = 40_000


@pytest.fixture(scope="module")
def book() -> tuple[np.ndarray, sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 400
    pd = rng.uniform(0.005, 0.15, n)
    rows = [np.full(n, 1000.0), rng.integers(0, 4, n) * 1000.0, np.where(rng.random(n) < 0.3, 2000.0, 0.0)]
    holdings = sp.csr_matrix(np.vstack(rows))
    losses = risk.monte_carlo_losses(holdings, pd, 0.9, scenarios=SCENARIOS, seed=5)
    return pd, holdings, losses


def _var_band(losses: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """A 99.9 % order-statistic band for the quantile: binomial count of scenarios below it."""
    n = losses.shape[0]
    half = 3.3 * np.sqrt(n * level * (1 - level))
    ordered = np.sort(losses, axis=0)
    return ordered[max(int(n * level - half), 0)], ordered[min(int(n * level + half), n - 1)]


def test_quadrature_and_monte_carlo_agree_within_the_simulation_error(book: tuple) -> None:
    pd, holdings, losses = book
    fig = risk.quadrature_risk(holdings, pd, 0.9)
    mc_mean = losses.mean(axis=0)
    mc_se = losses.std(axis=0) / np.sqrt(SCENARIOS)
    assert np.all(np.abs(fig.expected_loss - mc_mean) <= 4 * mc_se)
    for level, var, es in ((0.95, fig.var95, fig.es95), (0.99, fig.var99, fig.es99)):
        low, high = _var_band(losses, level)
        # The conditional-normal VaR sits inside the simulation's band (plus one note of lattice width).
        assert np.all(var >= low - 900) and np.all(var <= high + 900), (level, var, low, high)
        _, mc_es = risk.empirical_risk(losses, level)
        tail = losses >= np.quantile(losses, level, axis=0)
        es_se = np.array([losses[tail[:, i], i].std() / np.sqrt(tail[:, i].sum()) for i in range(losses.shape[1])])
        assert np.all(np.abs(es - mc_es) <= 4 * es_se + 900), (level, es, mc_es, es_se)
    assert np.allclose(fig.prob_any_loss, (losses > 0).mean(axis=0), atol=4 * np.sqrt(0.25 / SCENARIOS))


def test_exact_pmf_of_a_small_holding_matches_monte_carlo() -> None:
    pd = np.array([0.02, 0.05, 0.1, 0.2])
    units = np.array([1, 2, 1, 3])
    pmf = risk.exact_loss_pmf(units, pd)
    assert pmf.sum() == pytest.approx(1.0)
    losses = risk.monte_carlo_losses(units[None, :].astype(float), pd, 1.0, scenarios=SCENARIOS, seed=2)[:, 0]
    simulated = np.bincount(losses.astype(int), minlength=pmf.size) / SCENARIOS
    assert np.all(np.abs(pmf - simulated) <= 4 * np.sqrt(pmf * (1 - pmf) / SCENARIOS) + 1e-4)


def test_independent_loans_give_the_poisson_binomial() -> None:
    pd = np.array([0.1, 0.3])
    pmf = risk.exact_loss_pmf(np.array([1, 1]), pd, rho=0.0)
    assert pmf.tolist() == pytest.approx([0.9 * 0.7, 0.1 * 0.7 + 0.9 * 0.3, 0.03])


def test_a_holding_whose_any_loss_is_rarer_than_the_tail_has_zero_var() -> None:
    fig = risk.quadrature_risk(np.array([[1000.0]]), np.array([0.004]), 0.9)
    assert fig.var95[0] == 0.0 and fig.var99[0] == 0.0 and fig.es99[0] > 0.0
    assert fig.prob_any_loss[0] == pytest.approx(0.004, rel=1e-3)


def test_basel_retail_correlation_runs_from_16_to_3_percent() -> None:
    rho = risk.basel_retail_correlation([0.0, 0.03, 1.0])
    assert rho[0] == pytest.approx(0.16) and rho[2] == pytest.approx(0.03, abs=1e-12)
    assert 0.03 < rho[1] < 0.16


def test_concentration_by_hand() -> None:
    holdings = np.array([[1000.0, 1000.0, 2000.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    hhi, effective, largest = risk.concentration(holdings)
    assert hhi[0] == pytest.approx(0.25 + 0.0625 + 0.0625) and effective[0] == pytest.approx(1 / 0.375)
    assert largest[0] == pytest.approx(0.5) and hhi[1] == 0.0 and effective[1] == 0.0
    labels, by_group = risk.exposure_by_group(holdings, ["A", "C", "A", "E"])
    assert labels.tolist() == ["A", "C", "E"] and by_group[0].tolist() == [3000.0, 1000.0, 0.0]


def test_spreading_lowers_the_chance_of_losing_money_down_to_a_floor() -> None:
    counts = np.array([1, 5, 20, 100, 400])
    curve = risk.spread_curve(counts, pd=0.05, lgd=0.9, return_if_repaid=0.15)
    assert curve[0] == pytest.approx(0.05, rel=1e-6)  # one note: lose iff it defaults
    # A few notes can be worse than one (one default already wipes out the interest); many are better.
    assert curve[4] < curve[3] < curve[2] < curve[1]
    independent = risk.spread_curve(counts, pd=0.05, lgd=0.9, return_if_repaid=0.15, rho=0.0)
    assert independent[-1] < curve[-1]  # correlation leaves a floor


def test_book_distribution_sums_to_one_and_puts_the_mean_right() -> None:
    rng = np.random.default_rng(1)
    pd = rng.uniform(0.01, 0.1, 300)
    edges, probs = risk.book_loss_distribution(np.full(300, 1000.0), pd, 0.9, bins=120)
    assert probs.sum() == pytest.approx(1.0) and np.all(probs >= -1e-12)
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert (centres * probs).sum() == pytest.approx((pd * 900).sum(), rel=0.03)


def test_bad_input_is_refused() -> None:
    with pytest.raises(PortfolioInputError, match="between 0 and 1"):
        risk.quadrature_risk(np.ones((1, 2)), np.array([0.1, 1.2]))
    with pytest.raises(PortfolioInputError, match="one column per loan"):
        risk.quadrature_risk(np.ones((1, 3)), np.array([0.1, 0.2]))
    with pytest.raises(PortfolioInputError, match="correlation"):
        risk.quadrature_risk(np.ones((1, 2)), np.array([0.1, 0.2]), rho=1.0)
