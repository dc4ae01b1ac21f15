"""Lender returns: realised XIRR of dated cash flows, and the expected loss-adjusted return of holdings.

Cash flows are from the lender's side: money the lender puts in (deposits
into notes, i.e. a note bought) is negative, money back (repayment shares,
recoveries, the value still held at the end) positive. Dates are numpy
datetime64[D] (or anything numpy converts to it); XIRR uses actual/365 like
Excel and pyxirr.
"""
from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyxirr

from portfolio.errors import PortfolioInputError

FloatArray = npt.NDArray[np.float64]

DAYS_PER_YEAR: Final = 365.0


def xirr(dates: npt.ArrayLike, amounts: npt.ArrayLike) -> float | None:
    """Annual internal rate of return of dated flows (pyxirr); None when it does not exist.

    It does not exist when all flows have one sign (nothing lent or nothing
    back yet), which a page shows as "not yet".
    """
    d = np.asarray(dates, dtype="datetime64[D]")
    a = np.asarray(amounts, dtype=np.float64)
    if d.shape != a.shape or a.ndim != 1:
        raise PortfolioInputError("Give one date per cash flow.")
    if not np.all(np.isfinite(a)):
        raise PortfolioInputError("Cash flows must be finite amounts.")
    if not (np.any(a > 0) and np.any(a < 0)):
        return None
    result = pyxirr.xirr(d.astype(object), a.tolist())
    return None if result is None or not np.isfinite(result) else float(result)


def xirr_batch(
    days: npt.ArrayLike, amounts: npt.ArrayLike, iterations: int = 50, tolerance: float = 1e-12
) -> FloatArray:
    """XIRR for many lenders at once by a vectorised Newton on log(1 + r): (m, T) -> (m,).

    `days` are day offsets from each lender's first flow (m, T) or (T,) and
    `amounts` (m, T), zero-padded where a lender has fewer flows. NaN where
    a lender's flows do not change sign or Newton does not converge.
    """
    a = np.atleast_2d(np.asarray(amounts, dtype=np.float64))
    t = np.broadcast_to(np.asarray(days, dtype=np.float64), a.shape) / DAYS_PER_YEAR
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(t)):
        raise PortfolioInputError("Cash flows and days must be finite.")
    valid = np.any(a > 0, axis=1) & np.any(a < 0, axis=1)
    # Unknown g = log(1 + r): f(g) = sum a e^{-g t}; f'(g) = -sum a t e^{-g t}. Start at 10 %.
    g = np.full(a.shape[0], np.log1p(0.1))
    for _ in range(iterations):
        disc = np.exp(-g[:, None] * t)
        f = (a * disc).sum(axis=1)
        df = -(a * t * disc).sum(axis=1)
        step = np.where(df != 0, f / np.where(df != 0, df, 1.0), 0.0)
        g = g - np.clip(step, -1.0, 1.0)
        if np.all(np.abs(step[valid]) < tolerance):
            break
    disc = np.exp(-g[:, None] * t)
    scale = np.abs(a).sum(axis=1)
    converged = np.abs((a * disc).sum(axis=1)) <= 1e-9 * np.where(scale > 0, scale, 1.0)
    return np.where(valid & converged, np.expm1(g), np.nan)


def expected_annual_return(
    outstanding_msat: npt.ArrayLike,
    annual_rate: npt.ArrayLike,
    remaining_years: npt.ArrayLike,
    pd: npt.ArrayLike,
    lgd: float | npt.ArrayLike = 0.9,
) -> float:
    """Expected, loss-adjusted annual return of current holdings (one lender), a fraction.

    Per note: contractual interest (rate x outstanding x remaining term) less
    expected loss (PD x LGD x outstanding), over the capital-years at risk;
    exposure-weighted across notes. A simple, stated approximation: it
    ignores amortisation inside the remaining term (so it slightly overstates
    the interest of annuity loans) and the timing of a default.
    """
    e = np.asarray(outstanding_msat, dtype=np.float64)
    r, y, p = (np.broadcast_to(np.asarray(v, dtype=np.float64), e.shape) for v in (annual_rate, remaining_years, pd))
    g = np.broadcast_to(np.asarray(lgd, dtype=np.float64), e.shape)
    if np.any(e < 0) or np.any(y < 0) or np.any((p < 0) | (p > 1)) or np.any((g < 0) | (g > 1)) or np.any(r < 0):
        raise PortfolioInputError("Exposure, term and rate must not be negative; PD and LGD between 0 and 1.")
    capital_years = float((e * y).sum())
    if capital_years <= 0:
        return 0.0
    interest = (e * r * y * (1.0 - p)).sum()
    losses = (e * p * g).sum()
    return float((interest - losses) / capital_years)


def note_outcomes(annual_rate: float, count: int, periods_per_year: int, method: str, fee_share: float,
                  lgd: float = 0.9) -> tuple[float, float]:
    """(net return if repaid, net loss if it defaults), per unit of a note's principal, from its schedule.

    Repaid: the schedule's whole interest less the service fee (a share of
    interest). Defaulted: a default is taken as equally likely after each
    of 0..count-1 paid installments; the note then loses `lgd` of the
    principal still outstanding, less the interest (after the fee) it had
    already received. Plain schedule maths (annuity: level payments;
    equal_principal: 1 / count of the principal each time), without the
    calendar's day counts or rounding.
    """
    if count < 1 or periods_per_year < 1 or annual_rate < 0 or not 0 <= fee_share <= 1 or not 0 <= lgd <= 1:
        raise PortfolioInputError("Use at least one installment, a non-negative rate and shares between 0 and 1.")
    i = annual_rate / periods_per_year
    k = np.arange(count + 1, dtype=np.float64)  # installments paid
    if method == "annuity" and i > 0:
        growth = (1.0 + i) ** count
        outstanding = (growth - (1.0 + i) ** k) / (growth - 1.0)
        payment = i * growth / (growth - 1.0)
        interest_paid = k * payment - (1.0 - outstanding)
    else:
        outstanding = 1.0 - k / count
        # Interest of installment j is i x the balance before it: 1 - (j - 1) / count.
        interest_paid = np.concatenate([[0.0], np.cumsum(i * (1.0 - np.arange(count) / count))])
    keep = 1.0 - fee_share
    repaid = float(interest_paid[-1] * keep)
    default_loss = float(np.mean(lgd * outstanding[:-1] - interest_paid[:-1] * keep))
    return repaid, default_loss
