"""Risk figures for one lender, many lenders at once, and the whole book.

Default model: one-factor Gaussian copula (Vasicek). Loan j defaults when
sqrt(rho_j) Z + sqrt(1 - rho_j) e_j < Phi^-1(PD_j), Z and e_j standard normal.
Given the common factor Z = z, defaults are independent with
p_j(z) = Phi((Phi^-1(PD_j) - sqrt(rho_j) z) / sqrt(1 - rho_j)). The asset
correlation defaults to the Basel II/III "other retail" formula
(``basel_retail_correlation``): 3 % for risky loans up to 16 % for safe ones.

Two independent methods give the loss distribution:

* ``monte_carlo_losses``: draw Z and e, count defaults, sum losses (reference);
* ``quadrature_*``: Gauss-Hermite quadrature over Z (32 nodes by default).
  Per node the loss of a holding is a sum of independent Bernoulli losses: its
  mean and variance are exact (one sparse product for every lender at once)
  and its distribution is taken as normal (a conditional-normal
  approximation, accurate once a holding has a few dozen loans). The
  probability of no loss at all is exact per node (product of survival
  probabilities), so a small holding whose VaR is 0 gets 0, not a normal
  tail. ``exact_loss_pmf`` gives the exact lattice distribution
  (Poisson-binomial per node, convolved) for one small holding.

Shapes: n loans, m lenders, K quadrature nodes. ``holdings`` is an (m, n)
scipy.sparse matrix (or dense array) of exposure in msat of lender i in loan j.
Losses are in msat as float64; round once where they are shown.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.special import bdtrc, ndtr, ndtri

from portfolio.errors import PortfolioInputError

FloatArray = npt.NDArray[np.float64]

QUADRATURE_NODES: Final = 32
NODE_WEIGHT_FLOOR: Final = 1e-10  # nodes lighter than this carry 7e-11 of 32 nodes' mass together
LEVELS: Final = (0.95, 0.99)
_SQRT_2PI: Final = float(np.sqrt(2.0 * np.pi))
_SD_FLOOR: Final = 1e-9  # msat: below any real spread, above zero


def basel_retail_correlation(pd: npt.ArrayLike) -> FloatArray:
    """Basel "other retail" asset correlation: 0.03 w + 0.16 (1 - w), w = (1 - e^-35PD) / (1 - e^-35)."""
    p = np.asarray(pd, dtype=np.float64)
    weight = -np.expm1(-35.0 * p) / -np.expm1(-35.0)
    return np.asarray(0.03 * weight + 0.16 * (1.0 - weight), dtype=np.float64)


def _check_pd(pd: npt.ArrayLike) -> FloatArray:
    p = np.asarray(pd, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise PortfolioInputError("PD must be a list of probabilities between 0 and 1.")
    return p


def _rho(pd: FloatArray, rho: float | npt.ArrayLike | None) -> FloatArray:
    if rho is None:
        return basel_retail_correlation(pd)
    r = np.broadcast_to(np.asarray(rho, dtype=np.float64), pd.shape)
    if not np.all((r >= 0) & (r < 1)):
        raise PortfolioInputError("Asset correlation must be at least 0 and below 1.")
    return np.asarray(r, dtype=np.float64)


def gauss_hermite_normal(nodes: int = QUADRATURE_NODES) -> tuple[FloatArray, FloatArray]:
    """Nodes z and weights w with sum w f(z) ~ E f(Z), Z standard normal."""
    if not 2 <= nodes <= 200:
        raise PortfolioInputError("Use between 2 and 200 quadrature nodes.")
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return x, w / w.sum()


def conditional_pd(pd: FloatArray, rho: FloatArray, z: FloatArray) -> FloatArray:
    """p_j(z), shape (K, n): the default probability of each loan given each factor value."""
    threshold = ndtri(np.clip(pd, 1e-300, 1.0 - 1e-16))
    return np.asarray(
        ndtr((threshold[None, :] - np.sqrt(rho)[None, :] * z[:, None]) / np.sqrt(1.0 - rho)[None, :]),
        dtype=np.float64,
    )


def _as_sparse(holdings: sp.spmatrix | sp.sparray | npt.ArrayLike, n_loans: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix(holdings if sp.issparse(holdings) else np.atleast_2d(np.asarray(holdings, np.float64)),
                           dtype=np.float64)
    if matrix.shape[1] != n_loans:
        raise PortfolioInputError("Holdings need one column per loan.")
    if matrix.nnz and (not np.all(np.isfinite(matrix.data)) or matrix.data.min() < 0):
        raise PortfolioInputError("Exposures must be finite and not negative.")
    return matrix


@dataclass(frozen=True)
class RiskFigures:
    """Per lender (arrays of shape (m,)), losses in msat."""

    exposure: FloatArray
    expected_loss: FloatArray
    var95: FloatArray
    es95: FloatArray
    var99: FloatArray
    es99: FloatArray
    prob_any_loss: FloatArray


class ConditionalMoments:
    """Per-node mean, standard deviation and P(no loss) of each lender's loss: the quadrature's core.

    Speed (10,000 lenders x 2 M holdings): Gauss-Hermite nodes whose weight is
    below ``NODE_WEIGHT_FLOOR`` are dropped (32 nodes -> 22; the dropped mass
    is 7e-11, far below any tail we report), and the three sparse products run
    in float32 (relative error ~1e-7 on sums of a few hundred terms; set
    ``single=False`` for float64). The expected loss is exact (float64 EL =
    sum of exposure x LGD x PD), not the quadrature's estimate of it.
    """

    def __init__(
        self,
        holdings: sp.spmatrix | sp.sparray | npt.ArrayLike,
        pd: npt.ArrayLike,
        lgd: float | npt.ArrayLike,
        rho: float | npt.ArrayLike | None = None,
        nodes: int = QUADRATURE_NODES,
        single: bool = True,
    ) -> None:
        p = _check_pd(pd)
        loss_given = np.broadcast_to(np.asarray(lgd, dtype=np.float64), p.shape)
        if not np.all((loss_given >= 0) & (loss_given <= 1)):
            raise PortfolioInputError("LGD must be between 0 and 1.")
        h = _as_sparse(holdings, p.size)
        z, w = gauss_hermite_normal(nodes)
        keep = w >= NODE_WEIGHT_FLOOR
        z, self.weights = z[keep], w[keep] / w[keep].sum()
        cond = conditional_pd(p, _rho(p, rho), z)  # (K, n)
        work = np.float32 if single else np.float64
        # One CSR structure, three data arrays: loss, loss squared, 1 (held).
        h.sum_duplicates()
        # (m, n) loss if loan j defaults: scale the data in place of a sparse multiply (which goes via COO).
        loss = sp.csr_matrix((h.data * loss_given[h.indices], h.indices, h.indptr), shape=h.shape)
        self.exposure = np.asarray(h.sum(axis=1)).ravel()
        self.expected_loss = np.asarray(loss @ p, dtype=np.float64).ravel()
        matrix = sp.csr_matrix((loss.data.astype(work), loss.indices, loss.indptr), shape=loss.shape)
        # (m, n) @ (n, K): every lender's conditional mean and variance at every node.
        self.mean = np.asarray(matrix @ np.ascontiguousarray(cond.T, dtype=work), dtype=np.float64).T  # (K, m)
        matrix.data = matrix.data * matrix.data
        var = np.asarray(matrix @ np.ascontiguousarray((cond * (1.0 - cond)).T, dtype=work), dtype=np.float64).T
        self.std = np.sqrt(np.maximum(var, 0.0))
        matrix.data = (loss.data > 0).astype(work)  # a zero exposure cannot be lost
        with np.errstate(divide="ignore"):  # a loan certain to default: log 0 = -inf, so P(no loss) = 0
            log_survive = np.log1p(-cond)
        # P(no default among held loans | z) = exp(sum_j log(1 - p_j(z))).
        self.p_zero = np.exp(np.asarray(matrix @ np.ascontiguousarray(log_survive.T, dtype=work), dtype=np.float64).T)
        self.prob_any_loss = np.clip(1.0 - self.weights @ self.p_zero, 0.0, 1.0)

    def tail_probability(self, x: FloatArray) -> FloatArray:
        """P(loss > x) per lender, x of shape (m,)."""
        sd = np.where(self.std > 0, self.std, 1.0)
        tail = np.where(self.std > 0, ndtr((self.mean - x[None, :]) / sd), (self.mean > x[None, :]).astype(float))
        return np.asarray(np.minimum(self.weights @ tail, self.prob_any_loss), dtype=np.float64)

    def value_at_risk(self, level: float, iterations: int = 30) -> FloatArray:
        """The level-quantile of each lender's loss: safeguarded Newton on the mixture tail (vectorised).

        Newton steps on P(L > x) = 1 - level, kept inside a shrinking
        bracket [0, exposure] (a bisection step whenever Newton would leave
        it); stops when every lender's step is below a msat.
        """
        if not 0 < level < 1:
            raise PortfolioInputError("A confidence level must be between 0 and 1.")
        alpha = 1.0 - level
        low = np.zeros_like(self.exposure)
        high = self.exposure.copy()
        # A node with no spread is a step at its mean: a tiny floor on sd gives the same tail and density 0.
        inv_sd = 1.0 / np.maximum(self.std, _SD_FLOOR)
        w_density = self.weights[:, None] * inv_sd / _SQRT_2PI
        # Start from the unconditional normal approximation.
        total_var = self.weights @ (self.std**2 + self.mean**2) - self.expected_loss**2
        x = np.clip(self.expected_loss + ndtri(level) * np.sqrt(np.maximum(total_var, 0.0)), 0.0, high)
        for _ in range(iterations):
            d = (self.mean - x[None, :]) * inv_sd
            g = self.weights @ ndtr(d) - alpha  # decreasing in x
            d *= d
            d *= -0.5
            slope = np.einsum("km,km->m", w_density, np.exp(d, out=d))
            low = np.where(g > 0, x, low)
            high = np.where(g > 0, high, x)
            step = np.where(slope > 0, g / np.where(slope > 0, slope, 1.0), np.inf)
            newton = x + step
            inside = np.isfinite(newton) & (newton > low) & (newton < high)
            x_new = np.where(inside, newton, 0.5 * (low + high))
            # Stop once every step is below a msat or a millionth of the VaR.
            done = np.abs(x_new - x) < np.maximum(1.0, 1e-6 * x_new)
            x = x_new
            if np.all(done):
                break
        return np.where(self.prob_any_loss <= alpha, 0.0, x)

    def expected_shortfall(self, level: float, var: FloatArray | None = None) -> FloatArray:
        """E[loss | loss >= VaR]: closed form per node for a normal, mixed over the nodes."""
        v = self.value_at_risk(level) if var is None else var
        alpha = 1.0 - level
        sd = np.where(self.std > 0, self.std, 1.0)
        d = (v[None, :] - self.mean) / sd
        partial = self.mean * ndtr(-d) + self.std * np.exp(-0.5 * d * d) / _SQRT_2PI  # E[L 1{L>v}]
        tail_mass = self.weights @ ndtr(-d)
        # The atom of VaR itself fills the tail up to 1 - level (coherent ES).
        es = (self.weights @ partial + v * np.maximum(alpha - tail_mass, 0.0)) / alpha
        return np.asarray(np.maximum(es, v), dtype=np.float64)


def quadrature_risk(
    holdings: sp.spmatrix | sp.sparray | npt.ArrayLike,
    pd: npt.ArrayLike,
    lgd: float | npt.ArrayLike = 0.9,
    rho: float | npt.ArrayLike | None = None,
    nodes: int = QUADRATURE_NODES,
) -> RiskFigures:
    """EL, VaR and ES at 95 % and 99 %, P(any loss) for every row of `holdings` (m lenders x n loans)."""
    moments = ConditionalMoments(holdings, pd, lgd, rho, nodes)
    var95, var99 = moments.value_at_risk(0.95), moments.value_at_risk(0.99)
    return RiskFigures(
        exposure=moments.exposure,
        expected_loss=moments.expected_loss,
        var95=var95,
        es95=moments.expected_shortfall(0.95, var95),
        var99=var99,
        es99=moments.expected_shortfall(0.99, var99),
        prob_any_loss=moments.prob_any_loss,
    )


def book_loss_distribution(
    exposure: npt.ArrayLike,
    pd: npt.ArrayLike,
    lgd: float | npt.ArrayLike = 0.9,
    rho: float | npt.ArrayLike | None = None,
    bins: int = 200,
    nodes: int = QUADRATURE_NODES,
) -> tuple[FloatArray, FloatArray]:
    """The whole book's loss distribution on a grid: (bin edges (bins+1,), probabilities (bins,)).

    Bins span 0 to the 99.9 % quantile (the last bin takes everything above);
    a histogram for the chart and the operator page.
    """
    e = np.asarray(exposure, dtype=np.float64)
    moments = ConditionalMoments(e[None, :], pd, lgd, rho, nodes)
    top = max(float(moments.value_at_risk(0.999)[0]), 1.0)
    edges = np.linspace(0.0, top, bins + 1)
    sd = np.where(moments.std > 0, moments.std, 1.0)
    cdf = np.stack([moments.weights @ ndtr((x - moments.mean) / sd)[:, 0] for x in edges[1:]])
    cdf[-1] = 1.0
    # The exact no-loss atom sits in the first bin.
    p_zero = 1.0 - float(moments.prob_any_loss[0])
    cdf = np.maximum(cdf, p_zero)
    return edges, np.diff(np.concatenate([[0.0], cdf]))


def exact_loss_pmf(
    loss_units: npt.ArrayLike, pd: npt.ArrayLike, rho: float | npt.ArrayLike | None = None, nodes: int = QUADRATURE_NODES
) -> FloatArray:
    """Exact distribution of a small holding's loss on a lattice (Poisson-binomial per node, mixed).

    `loss_units` are whole lattice units lost if each loan defaults (for
    example notes x LGD rounded to a sat); returns P(loss = k units) for
    k = 0..sum(units). Cost O(n x sum(units) x K): for a few dozen loans.
    """
    units = np.asarray(loss_units, dtype=np.int64)
    p = _check_pd(pd)
    if units.shape != p.shape or np.any(units < 0):
        raise PortfolioInputError("Give one non-negative loss (in whole units) per loan.")
    if units.sum() > 1_000_000:
        raise PortfolioInputError("The exact method is for small holdings; use quadrature_risk.")
    z, w = gauss_hermite_normal(nodes)
    cond = conditional_pd(p, _rho(p, rho), z)  # (K, n)
    dist = np.zeros((z.size, int(units.sum()) + 1))
    dist[:, 0] = 1.0
    for j, size in enumerate(units):
        shifted = np.zeros_like(dist)
        shifted[:, size:] = dist[:, : dist.shape[1] - size]
        dist = dist * (1.0 - cond[:, j : j + 1]) + shifted * cond[:, j : j + 1]
    return np.asarray(w @ dist, dtype=np.float64)


def monte_carlo_losses(
    holdings: sp.spmatrix | sp.sparray | npt.ArrayLike,
    pd: npt.ArrayLike,
    lgd: float | npt.ArrayLike = 0.9,
    rho: float | npt.ArrayLike | None = None,
    scenarios: int = 10_000,
    seed: int = 0,
    chunk: int = 2_000,
) -> FloatArray:
    """Simulated losses, shape (scenarios, m): the plain reference method."""
    p = _check_pd(pd)
    r = _rho(p, rho)
    loss_given = np.broadcast_to(np.asarray(lgd, dtype=np.float64), p.shape)
    h = _as_sparse(holdings, p.size).multiply(loss_given[None, :]).tocsc()
    threshold = ndtri(np.clip(p, 1e-300, 1.0 - 1e-16))
    rng = np.random.default_rng(seed)
    out = np.empty((scenarios, h.shape[0]))
    for start in range(0, scenarios, chunk):
        size = min(chunk, scenarios - start)
        z = rng.standard_normal((size, 1))
        assets = np.sqrt(r) * z + np.sqrt(1.0 - r) * rng.standard_normal((size, p.size))
        defaults = sp.csr_matrix((assets < threshold).astype(np.float64))
        out[start : start + size] = (defaults @ h.T).toarray()
    return out


def empirical_risk(losses: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """(VaR, ES) per column of simulated losses at `level` (ES averages the worst 1 - level)."""
    ordered = np.sort(losses, axis=0)
    n = ordered.shape[0]
    tail = max(int(np.floor(n * (1.0 - level))), 1)
    return ordered[n - tail], ordered[n - tail :].mean(axis=0)


def concentration(holdings: sp.spmatrix | sp.sparray | npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per lender: HHI of exposures, effective number of loans (1 / HHI), largest single exposure share.

    A lender with no exposure gets HHI 0, effective number 0, largest share 0.
    """
    h = sp.csr_matrix(holdings if sp.issparse(holdings) else np.atleast_2d(np.asarray(holdings, np.float64)),
                      dtype=np.float64)
    total = np.asarray(h.sum(axis=1)).ravel()
    squares = np.asarray(h.multiply(h).sum(axis=1)).ravel()
    largest = h.max(axis=1).toarray().ravel()
    safe = np.where(total > 0, total, 1.0)
    hhi = np.where(total > 0, squares / safe**2, 0.0)
    effective = np.where(hhi > 0, 1.0 / np.where(hhi > 0, hhi, 1.0), 0.0)
    return hhi, effective, np.where(total > 0, largest / safe, 0.0)


def exposure_by_group(
    holdings: sp.spmatrix | sp.sparray | npt.ArrayLike, group_of_loan: Sequence[str] | npt.ArrayLike
) -> tuple[npt.NDArray[np.str_], FloatArray]:
    """(group labels (G,), exposure per lender and group (m, G)): grade, purpose or term buckets."""
    labels, index = np.unique(np.asarray(group_of_loan, dtype=str), return_inverse=True)
    h = sp.csr_matrix(holdings if sp.issparse(holdings) else np.atleast_2d(np.asarray(holdings, np.float64)),
                      dtype=np.float64)
    if h.shape[1] != index.size:
        raise PortfolioInputError("Give one group per loan.")
    onehot = sp.csr_matrix((np.ones(index.size), (np.arange(index.size), index)), shape=(index.size, labels.size))
    return labels, np.asarray((h @ onehot).toarray())


def spread_curve(
    note_counts: npt.ArrayLike,
    pd: float,
    lgd: float = 0.9,
    return_if_repaid: float = 0.1,
    rho: float | None = None,
    nodes: int = QUADRATURE_NODES,
) -> FloatArray:
    """P(losing money) holding n equal notes in n loans of this PD, for each n in `note_counts`.

    A repaid note earns `return_if_repaid` of its size over the term, a
    defaulted one loses `lgd` (and earns nothing): with k defaults out of n
    the lender loses money when k lgd > (n - k) r. K defaults given the
    factor are Binomial(n, p(z)); mixed over z. Correlation puts a floor
    under the curve: spreading removes the idiosyncratic risk, not the
    common one.
    """
    n = np.asarray(note_counts, dtype=np.int64)
    if np.any(n < 1) or not 0 <= pd <= 1 or not 0 < lgd <= 1 or return_if_repaid < 0:
        raise PortfolioInputError("Use at least one note, a PD and LGD between 0 and 1 and a non-negative return.")
    p = np.array([pd])
    z, w = gauss_hermite_normal(nodes)
    cond = conditional_pd(p, _rho(p, rho), z)[:, 0]  # (K,)
    # Lose money iff k > n r / (lgd + r); the largest k that still breaks even:
    safe_defaults = np.floor(n * return_if_repaid / (lgd + return_if_repaid) + 1e-12).astype(np.int64)
    # P(K > k) for K ~ Binomial(n, p): scipy.special's bdtrc (scipy.stats costs a second to import).
    tail = bdtrc(safe_defaults[None, :], n[None, :], cond[:, None])  # (K, len(n))
    return np.asarray(w @ tail, dtype=np.float64)
