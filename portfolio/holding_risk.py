"""One holding's loss distribution and risk figures: exact where the holding is small, accurate to < 1 % elsewhere.

Same model as ``portfolio.risk`` (one-factor Gaussian copula). Two methods:

* ``lattice``: given the common factor Z = z the loans default independently,
  so the holding's loss given z is a sum of independent Bernoulli losses whose
  distribution is computed exactly by convolving loan by loan on a lattice
  (a Poisson-binomial with unequal sizes); the conditional distributions are
  mixed over Gauss-Hermite nodes in z. The lattice step is the greatest common
  divisor of the losses (in msat) when that gives at most ``LATTICE_POINTS`` (20,000; 10,000 above 300 loans)
  points — then the distribution is exact and has mass only on losses that can
  happen — and otherwise the largest loss / ``LATTICE_POINTS`` per loan with
  each loss rounded to the nearest step (every figure is then off by at most
  n x step / 2, reported as ``rounding_bound_msat``).
* ``normal``: above ``EXACT_MAX_LOANS`` loans the per-node loss is taken as
  normal with its exact mean and variance (``risk.ConditionalMoments``) over
  ``LARGE_NODES`` nodes. The switch point and node counts come from
  ``bench/holding_risk.py`` (figures in BENCHMARKS.md): with 200 nodes the
  normal mixture's VaR and ES at 95 % and 99 % are within 1 % of the lattice
  from the switch point up.

VaR is the smallest loss x with P(L <= x) >= level; ES is the coherent
expected shortfall (the mean of the worst 1 - level of outcomes, the atom at
VaR filling the tail up to 1 - level), so ES >= VaR and ES99 >= ES95 always.
EL is exact (sum of exposure x LGD x PD), not read off either distribution.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from math import gcd
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from portfolio.errors import PortfolioInputError
from portfolio.risk import (LEVELS, ConditionalMoments, RiskFigures, _check_pd, _rho, conditional_pd,
                            gauss_hermite_normal)

FloatArray = npt.NDArray[np.float64]

LATTICE_POINTS: Final = 20_000  # a holding's whole loss range at most this many steps (up to EXACT_NODES_UP_TO loans)
# Above: 10,000 (measured against 40,000 at 300-1,000 loans: figures within 0.25 %, twice as fast).
LATTICE_POINTS_LARGE: Final = 10_000
# Nodes over the common factor. A few loans' conditional pmf is smooth in z: 32 nodes equal 200 to 0.001 %
# up to 300 loans; at 1,000 loans 32 are 0.6 % off and 64 are 0.004 % off (bench/holding_risk.py).
EXACT_NODES: Final = 32
EXACT_NODES_LARGE: Final = 64  # above EXACT_NODES_UP_TO loans
EXACT_NODES_UP_TO: Final = 300
LARGE_NODES: Final = 200  # the normal mixture's: 32 left VaR off by 3-6 % on large books, 200 < 0.2 %
# The switch: the normal mixture's worst error (low PDs, 0.05-0.5 %) is 1.5 % at 500 loans, 0.4 % at 1,000.
EXACT_MAX_LOANS: Final = 1_000
HISTOGRAM_BARS: Final = 30
NODE_WEIGHT_FLOOR: Final = 1e-12


@dataclass(frozen=True)
class HoldingRisk:
    """One holding's figures (msat as float), its loss histogram and how they were computed."""

    figures: RiskFigures  # arrays of shape (1,)
    edges: tuple[float, ...]  # histogram bin edges, msat
    probabilities: tuple[float, ...]  # per bin
    method: str  # "lattice" or "normal"
    rounding_bound_msat: float  # 0 when the lattice is exact (its step divides every loss)
    pmf: FloatArray | None = None  # the lattice method's P(loss = k x step)
    step_msat: float = 0.0


def loss_lattice(loss_msat: FloatArray, points: int = LATTICE_POINTS) -> tuple[npt.NDArray[np.int64], float]:
    """(whole steps per loan, step in msat): the gcd of the losses if it keeps the lattice small, else rounded."""
    whole = np.round(loss_msat).astype(np.int64)
    positive = [int(v) for v in whole if v > 0]
    if not positive:
        return np.zeros(whole.shape, dtype=np.int64), 1.0
    step = reduce(gcd, positive)
    if sum(positive) // step <= points:
        return whole // step, float(step)
    # Too fine: the whole range in `points` steps, each loan's loss rounded to the nearest one.
    coarse = max(float(sum(positive)) / points, 1.0)
    return np.round(loss_msat / coarse).astype(np.int64), coarse


def factor_nodes(nodes: int) -> tuple[FloatArray, FloatArray]:
    """Gauss-Hermite nodes without those lighter than 1e-12 (64 -> 36 nodes; their mass together 2e-13)."""
    z, w = gauss_hermite_normal(nodes)
    keep = w >= NODE_WEIGHT_FLOOR
    return z[keep], w[keep] / w[keep].sum()


def lattice_pmf(units: npt.NDArray[np.int64], pd: FloatArray, rho: FloatArray, nodes: int = EXACT_NODES) -> FloatArray:
    """P(loss = k steps), k = 0..sum(units): each node's Poisson-binomial, convolved loan by loan, mixed over z."""
    z, w = factor_nodes(nodes)
    cond = conditional_pd(pd, rho, z)  # (K, n)
    total = int(units.sum())
    dist = np.zeros((z.size, total + 1))
    dist[:, 0] = 1.0
    filled = 0  # mass lies in [0, filled] so far: each convolution only touches that prefix
    for j in np.argsort(units, kind="stable"):
        size = int(units[j])
        if size == 0:
            continue
        p = cond[:, j : j + 1]
        top = filled + size
        # Right-hand side evaluated before the assignment: the shifted copy is of the old values.
        dist[:, size : top + 1] = dist[:, size : top + 1] * (1.0 - p) + dist[:, : filled + 1] * p
        dist[:, :size] *= 1.0 - p
        filled = top
    return np.asarray(np.clip(w @ dist, 0.0, None), dtype=np.float64)


def figures_from_pmf(pmf: FloatArray, step: float, level: float) -> tuple[float, float]:
    """(VaR, ES) at `level` of a loss taking k x step with probability pmf[k]."""
    cdf = np.cumsum(pmf)
    cdf /= cdf[-1]  # the mixture's mass is 1 to ~1e-15; normalised so the top of the range is reached
    k = int(np.searchsorted(cdf, level - 1e-12))  # smallest k with P(L <= k) >= level (float tolerance)
    k = min(k, pmf.size - 1)
    alpha = 1.0 - level
    losses = np.arange(pmf.size, dtype=np.float64) * step
    above = pmf[k + 1 :] / pmf.sum()
    tail_mass = float(above.sum())
    es = (float(above @ losses[k + 1 :]) + losses[k] * max(alpha - tail_mass, 0.0)) / alpha
    return float(losses[k]), max(es, float(losses[k]))


def _histogram_from_pmf(pmf: FloatArray, step: float, bars: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Bars centred on the lattice: few achievable losses give one bar each, many are pooled `bars` to a chart."""
    support = np.nonzero(pmf > 1e-12)[0]
    top = int(support[-1]) if support.size else 0
    per_bar = max(int(np.ceil((top + 1) / bars)), 1)
    count = int(np.ceil((top + 1) / per_bar))
    padded = np.zeros(count * per_bar)
    padded[: top + 1] = pmf[: top + 1]
    probabilities = padded.reshape(count, per_bar).sum(axis=1)
    probabilities[-1] += float(pmf[top + 1 :].sum())
    edges = (np.arange(count + 1) * per_bar - 0.5) * step
    edges[0] = 0.0  # no loss below 0: the first bar, centred on 0, is half as wide
    return tuple(float(e) for e in edges), tuple(float(p) for p in probabilities)


def _normal_histogram(moments: ConditionalMoments, bars: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    top = max(float(moments.value_at_risk(0.999)[0]), 1.0)
    edges = np.linspace(0.0, top, bars + 1)
    sd = np.where(moments.std > 0, moments.std, 1.0)
    cdf = np.array([float(moments.weights @ ndtr((x - moments.mean[:, 0]) / sd[:, 0])) for x in edges[1:]])
    cdf[-1] = 1.0
    cdf = np.maximum(cdf, 1.0 - float(moments.prob_any_loss[0]))  # the exact no-loss atom sits in the first bin
    return tuple(float(e) for e in edges), tuple(float(p) for p in np.diff(np.concatenate([[0.0], cdf])))


def holding_risk(
    exposure_msat: npt.ArrayLike,
    pd: npt.ArrayLike,
    lgd: float | npt.ArrayLike = 0.9,
    rho: float | npt.ArrayLike | None = None,
    exact_max_loans: int = EXACT_MAX_LOANS,
    bars: int = HISTOGRAM_BARS,
) -> HoldingRisk:
    """EL, VaR and ES at 95 % and 99 %, P(any loss) and the loss histogram of one holding (one value per loan)."""
    p = _check_pd(pd)
    exposure = np.asarray(exposure_msat, dtype=np.float64)
    loss_given = np.broadcast_to(np.asarray(lgd, dtype=np.float64), p.shape)
    if exposure.shape != p.shape or not np.all(np.isfinite(exposure)) or np.any(exposure < 0):
        raise PortfolioInputError("Give one finite, non-negative exposure per loan.")
    if not np.all((loss_given >= 0) & (loss_given <= 1)):
        raise PortfolioInputError("LGD must be between 0 and 1.")
    correlation = _rho(p, rho)
    loss = exposure * loss_given
    expected = float(loss @ p)
    held = loss > 0
    if p.size > exact_max_loans:
        moments = ConditionalMoments(exposure[None, :], p, loss_given, correlation, LARGE_NODES, single=False)
        var = [moments.value_at_risk(level) for level in LEVELS]
        es = [moments.expected_shortfall(level, v) for level, v in zip(LEVELS, var)]
        edges, probabilities = _normal_histogram(moments, bars)
        figures = RiskFigures(np.array([exposure.sum()]), np.array([expected]), var[0], es[0], var[1], es[1],
                              moments.prob_any_loss)
        return HoldingRisk(figures, edges, probabilities, "normal", 0.0)
    small = held.sum() <= EXACT_NODES_UP_TO
    units, step = loss_lattice(loss[held], LATTICE_POINTS if small else LATTICE_POINTS_LARGE)
    exact = bool(np.allclose(units * step, loss[held], rtol=0.0, atol=0.5))
    nodes = EXACT_NODES if small else EXACT_NODES_LARGE
    pmf = lattice_pmf(units, p[held], correlation[held], nodes)
    # A rounded lattice can reach a little past the largest possible loss: no figure may.
    most = float(loss.sum())
    (var95, es95), (var99, es99) = (tuple(min(v, most) for v in figures_from_pmf(pmf, step, level))
                                    for level in LEVELS)
    # P(no loss) from the survival products, not the lattice: a loss rounded to 0 steps can still happen.
    z, w = factor_nodes(nodes)
    survive = np.prod(1.0 - conditional_pd(p[held], correlation[held], z), axis=1)
    prob_any = float(np.clip(1.0 - w @ survive, 0.0, 1.0)) if held.any() else 0.0
    edges, probabilities = _histogram_from_pmf(pmf, step, bars)
    figures = RiskFigures(np.array([exposure.sum()]), np.array([expected]), np.array([var95]), np.array([es95]),
                          np.array([var99]), np.array([es99]), np.array([prob_any]))
    bound = 0.0 if exact else float(held.sum()) * step / 2.0
    return HoldingRisk(figures, edges, probabilities, "lattice", bound, pmf, step)
