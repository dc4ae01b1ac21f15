"""VaR99 and ES99 for every one of 10,000 lenders holding 2 M notes; the book's loss distribution.

1. Every lender: the quadrature (Gauss-Hermite over the common factor,
   conditional normal per node) against the plain Monte Carlo of the same
   model (``risk.monte_carlo_losses``), both in this run.
   * Accuracy: for a sample of lenders the exact model value (each node's
     Poisson-binomial lattice, 200 nodes, ``risk.exact_loss_pmf``) is the
     reference; we print our relative ES99 error against it and the MC's.
   * The baseline: an MC *accurate to 1 %*, i.e. its 95 % confidence
     half-width (1.96 standard errors) on ES99 at most 1 % of ES99. The MC is
     run with --scenarios; the standard error is measured per lender from its
     own tail, and its time is scaled to the scenarios that reach 1 %
     (median lender; the 90th-percentile lender is printed as well).
2. The book of 10,000 loans: the quadrature's VaR99/ES99 and loss histogram
   against plain numpy MC; MC time at equal accuracy (its standard error
   equal to our error against a large MC reference) is scaled the same way.
Wall-clock medians of --runs (perf_counter) and CPU seconds (process_time), with
the load average before and after: this machine is shared.
Run by hand:  .venv/bin/python bench/portfolio_risk.py [--runs 5 --scenarios 4000]
"""
from __future__ import annotations

import argparse
import os
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


def exact_es(row: sp.csr_matrix, pd: np.ndarray, lgd: float, level: float, unit: float) -> tuple[float, float]:
    """(VaR, ES) of one lender from the exact lattice distribution (200 nodes)."""
    cols = row.indices
    units = np.round(row.data / unit).astype(np.int64)
    pmf = risk.exact_loss_pmf(units, pd[cols], nodes=200)
    loss = np.arange(pmf.size) * unit * lgd
    cdf = np.cumsum(pmf)
    k = int(np.searchsorted(cdf, level - 1e-12))
    alpha = 1.0 - level
    above = pmf[k + 1:]
    es = ((above * loss[k + 1:]).sum() + loss[k] * (alpha - above.sum())) / alpha
    return float(loss[k]), float(es)


def timed(fn, runs: int) -> tuple[float, float, object]:
    walls, cpus, out = [], [], None
    for _ in range(runs):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenarios", type=int, default=4000)
    parser.add_argument("--sample", type=int, default=100, help="lenders checked against the exact lattice")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")

    pd, h = holdings(10_000, 10_000, 2_000_000, seed=3)
    print(f"lenders {h.shape[0]:,}, loans {h.shape[1]:,}, holdings {h.nnz:,}")
    ours, ours_cpu, fig = timed(lambda: risk.quadrature_risk(h, pd, 0.9), args.runs)
    c, t = time.process_time(), time.perf_counter()
    losses = risk.monte_carlo_losses(h, pd, 0.9, scenarios=args.scenarios, seed=9)
    mc_time, mc_cpu = time.perf_counter() - t, time.process_time() - c
    _, mc_es = risk.empirical_risk(losses, 0.99)
    rng = np.random.default_rng(5)
    sample = rng.choice(h.shape[0], args.sample, replace=False)
    se = es_standard_error(losses[:, sample], 0.99)
    rel = se / np.maximum(mc_es[sample], 1.0)
    exact = np.array([exact_es(h[i], pd, 0.9, 0.99, 1000.0) for i in sample])
    err_ours = np.abs(fig.es99[sample] - exact[:, 1]) / exact[:, 1]
    err_var = np.abs(fig.var99[sample] - exact[:, 0]) / exact[:, 0]
    err_mc = np.abs(mc_es[sample] - exact[:, 1]) / exact[:, 1]
    print(f"quadrature, all lenders: median {ours:.3f} s wall, {ours_cpu:.3f} s CPU (aim < 0.5 s)")
    print(f"accuracy on {args.sample} lenders vs the exact lattice: ES99 |error| median {np.median(err_ours):.2%}, "
          f"95th pct {np.quantile(err_ours, 0.95):.2%}, max {err_ours.max():.2%}; VaR99 median {np.median(err_var):.2%}, "
          f"max {err_var.max():.2%} (lattice step {1000 * 0.9 / np.median(exact[:, 0]):.1%} of VaR)")
    print(f"  the {args.scenarios}-scenario MC vs the same: ES99 |error| median {np.median(err_mc):.2%}")
    for label, r in (("median lender", np.median(rel)), ("90th-percentile lender", np.quantile(rel, 0.9))):
        needed = args.scenarios * (1.96 * r / 0.01) ** 2
        wall, cpu = mc_time * needed / args.scenarios, mc_cpu * needed / args.scenarios
        print(f"MC {args.scenarios} scenarios: {mc_time:.1f} s wall ({mc_cpu:.1f} s CPU); ES99 relative SE ({label}) "
              f"{r:.2%}; accurate to 1 % (95 %) needs {needed:,.0f} scenarios = {wall:.0f} s wall, {cpu:.0f} s CPU; "
              f"ratio {wall / ours:.0f}x wall, {cpu / ours_cpu:.0f}x CPU (aim >= 200x)")

    # 2. The book.
    rng = np.random.default_rng(4)
    n = 10_000
    pd_b = rng.uniform(0.005, 0.2, n)
    exposure = rng.integers(10, 500, n) * 1000.0

    def book_figures() -> risk.RiskFigures:
        figures = risk.quadrature_risk(exposure[None, :], pd_b, 0.9)
        risk.book_loss_distribution(exposure, pd_b, 0.9)
        return figures

    ours_b, ours_b_cpu, book = timed(book_figures, args.runs)
    reference_scenarios = 200_000
    c, t = time.process_time(), time.perf_counter()
    ref = risk.monte_carlo_losses(exposure[None, :], pd_b, 0.9, scenarios=reference_scenarios, seed=1, chunk=1000)[:, 0]
    ref_time, ref_cpu = time.perf_counter() - t, time.process_time() - c
    ref_var, ref_es = risk.empirical_risk(ref[:, None], 0.99)
    tail = ref[ref >= ref_var[0]]
    ref_se = tail.std() / np.sqrt(tail.size)
    our_err = abs(book.es99[0] - ref_es[0])
    # MC scenarios for a standard error equal to max(our error, the reference's own SE).
    target = max(our_err, ref_se)
    needed_b = reference_scenarios * (ref_se / target) ** 2
    mc_b = ref_time * needed_b / reference_scenarios
    mc_b_cpu = ref_cpu * needed_b / reference_scenarios
    print(f"book: quadrature {ours_b * 1000:.0f} ms wall, {ours_b_cpu * 1000:.0f} ms CPU; ES99 {book.es99[0]:,.0f} vs "
          f"MC {ref_es[0]:,.0f} (MC SE {ref_se:,.0f}); MC at equal accuracy {needed_b:,.0f} scenarios = {mc_b:.1f} s; "
          f"ratio {mc_b / ours_b:.0f}x wall, {mc_b_cpu / ours_b_cpu:.0f}x CPU (aim >= 10x)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
