"""VaR99 and ES99 for every one of 10,000 lenders holding 2 M notes; the book's loss distribution.

1. Every lender: the quadrature (32 Gauss-Hermite nodes, conditional normal)
   against a Monte Carlo of the same model. The MC is run with --scenarios and
   its time scaled to the scenarios it would need for a 1 % standard error on
   ES99 (the figure we aim to match), measured from its own variance.
2. The book of 10,000 loans: the quadrature's VaR99/ES99 against plain numpy
   MC; MC time at equal accuracy (its standard error equal to our error
   against a large MC reference) is scaled the same way.
Run by hand:  .venv/bin/python bench/portfolio_risk.py [--runs 3 --scenarios 4000]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp

from portfolio import risk


def holdings(lenders: int, loans: int, notes: int, seed: int) -> tuple[np.ndarray, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    pd = rng.uniform(0.005, 0.2, loans)
    rows = rng.integers(0, lenders, notes)
    cols = rng.integers(0, loans, notes)
    h = sp.csr_matrix((np.full(notes, 1000.0), (rows, cols)), shape=(lenders, loans))
    h.sum_duplicates()
    return pd, h


def es_standard_error(losses: np.ndarray, level: float) -> np.ndarray:
    q = np.quantile(losses, level, axis=0)
    tail = losses >= q
    return np.array([losses[tail[:, i], i].std() / np.sqrt(max(tail[:, i].sum(), 1)) for i in range(losses.shape[1])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", type=int, default=4000)
    args = parser.parse_args()

    pd, h = holdings(10_000, 10_000, 2_000_000, seed=3)
    print(f"lenders {h.shape[0]:,}, loans {h.shape[1]:,}, holdings {h.nnz:,}")
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        fig = risk.quadrature_risk(h, pd, 0.9)
        times.append(time.perf_counter() - t)
    ours = statistics.median(times)
    t = time.perf_counter()
    losses = risk.monte_carlo_losses(h, pd, 0.9, scenarios=args.scenarios, seed=9)
    mc_time = time.perf_counter() - t
    _, mc_es = risk.empirical_risk(losses, 0.99)
    se = es_standard_error(losses[:, :200], 0.99)  # a sample of lenders is enough for the variance
    rel = np.median(se / np.maximum(mc_es[:200], 1.0))
    needed = args.scenarios * (rel / 0.01) ** 2
    mc_needed_time = mc_time * needed / args.scenarios
    diff = np.abs(fig.es99 - mc_es) / np.maximum(mc_es, 1.0)
    print(f"quadrature, all lenders: median {ours:.3f} s (aim < 0.5 s)")
    print(f"MC {args.scenarios} scenarios: {mc_time:.1f} s, ES99 relative SE {rel:.3%}; "
          f"{needed:,.0f} scenarios for 1 % -> {mc_needed_time:.0f} s; ratio {mc_needed_time / ours:.0f}x (aim >= 200x)")
    print(f"ES99 quadrature vs this MC: median |diff| {np.median(diff):.2%} (MC SE {rel:.2%})")

    # 2. The book.
    rng = np.random.default_rng(4)
    n = 10_000
    pd_b = rng.uniform(0.005, 0.2, n)
    exposure = rng.integers(10, 500, n) * 1000.0
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        book = risk.quadrature_risk(exposure[None, :], pd_b, 0.9)
        risk.book_loss_distribution(exposure, pd_b, 0.9)
        times.append(time.perf_counter() - t)
    ours_b = statistics.median(times)
    reference_scenarios = 200_000
    t = time.perf_counter()
    ref = risk.monte_carlo_losses(exposure[None, :], pd_b, 0.9, scenarios=reference_scenarios, seed=1, chunk=1000)[:, 0]
    ref_time = time.perf_counter() - t
    ref_var, ref_es = risk.empirical_risk(ref[:, None], 0.99)
    tail = ref[ref >= ref_var[0]]
    ref_se = tail.std() / np.sqrt(tail.size)
    our_err = abs(book.es99[0] - ref_es[0])
    # MC scenarios for a standard error equal to max(our error, the reference's own SE).
    target = max(our_err, ref_se)
    needed_b = reference_scenarios * (ref_se / target) ** 2
    mc_b = ref_time * needed_b / reference_scenarios
    print(f"book: quadrature {ours_b * 1000:.0f} ms; ES99 {book.es99[0]:,.0f} vs MC {ref_es[0]:,.0f} "
          f"(MC SE {ref_se:,.0f}); MC at equal accuracy {needed_b:,.0f} scenarios = {mc_b:.1f} s; "
          f"ratio {mc_b / ours_b:.0f}x (aim >= 10x)")


if __name__ == "__main__":
    main()
