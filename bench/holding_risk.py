"""One holding's VaR and ES at 95 % and 99 %: the old page's method, what is shown now, exact, Monte Carlo.

For holdings of 1 to 30 loans (small) and 300 to 5,000 (large), random PDs
(exponential, mean 3 % or 15 %) and note sizes (1,000-50,000 sat), Basel
correlation, LGD 90 %:

* old: ``risk.quadrature_risk`` (32 Gauss-Hermite nodes, normal per node), what
  /portfolio showed before issue 19;
* shown: ``holding_risk.holding_risk`` (exact lattice up to EXACT_MAX_LOANS
  loans, 200-node normal mixture above);
* exact: the lattice with 200 nodes (the reference);
* MC: ``risk.monte_carlo_losses`` with --scenarios draws (seeded).

Prints each figure's relative error against the exact one and each method's
time (wall, median of --runs). Also the issue's examples (one note at PD
0.49 %, at 1.09 %; the demo's lender-6).
Run by hand:  .venv/bin/python bench/holding_risk.py [--runs 3 --scenarios 2000000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from portfolio import holding_risk, risk

NAMES = ("var95", "es95", "var99", "es99")


def timed(fn: Callable[[], list[float]], runs: int) -> tuple[float, list[float]]:
    walls, out = [], []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls), out


def old(exposure: np.ndarray, pd: np.ndarray) -> list[float]:
    f = risk.quadrature_risk(exposure[None, :], pd, 0.9)
    return [float(getattr(f, name)[0]) for name in NAMES]


def shown(exposure: np.ndarray, pd: np.ndarray) -> list[float]:
    f = holding_risk.holding_risk(exposure, pd, 0.9).figures
    return [float(getattr(f, name)[0]) for name in NAMES]


def exact(exposure: np.ndarray, pd: np.ndarray) -> list[float]:
    units, step = holding_risk.loss_lattice(exposure * 0.9, 20_000)
    pmf = holding_risk.lattice_pmf(units, pd, risk.basel_retail_correlation(pd), nodes=200)
    return [x for level in (0.95, 0.99) for x in holding_risk.figures_from_pmf(pmf, step, level)]


def monte_carlo(exposure: np.ndarray, pd: np.ndarray, scenarios: int) -> list[float]:
    losses = risk.monte_carlo_losses(exposure[None, :], pd, 0.9, scenarios=scenarios, seed=1, chunk=20_000)
    out = []
    for level in (0.95, 0.99):
        var, es = risk.empirical_risk(losses, level)
        out += [float(var[0]), float(es[0])]
    return out


def row(label: str, exposure: np.ndarray, pd: np.ndarray, runs: int, scenarios: int) -> None:
    t_exact, ref = timed(lambda: exact(exposure, pd), 1)
    results = [("old", *timed(lambda: old(exposure, pd), runs)), ("shown", *timed(lambda: shown(exposure, pd), runs)),
               ("MC", *timed(lambda: monte_carlo(exposure, pd, scenarios), 1))]
    ref_text = " / ".join(f"{v / 1000:,.0f}" for v in ref)
    print(f"{label}: exact VaR95/ES95/VaR99/ES99 {ref_text} sat ({t_exact * 1000:,.0f} ms)")
    for name, wall, values in results:
        errors = " ".join(f"{(v - r) / r:+.2%}" if r else f"{v / 1000:+,.0f} sat" for v, r in zip(values, ref))
        print(f"    {name:>5}: {errors}  ({wall * 1000:,.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", type=int, default=2_000_000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; EXACT_MAX_LOANS {holding_risk.EXACT_MAX_LOANS}")
    print("errors against the exact figure (VaR95 ES95 VaR99 ES99); MC with "
          f"{args.scenarios:,} scenarios up to 30 loans, 200,000 above")
    sat = 1000.0
    row("one 10,000-sat note, PD 0.49 %", np.array([10_000 * sat]), np.array([0.004879]), args.runs, args.scenarios)
    row("one 10,000-sat note, PD 1.09 %", np.array([10_000 * sat]), np.array([0.010928]), args.runs, args.scenarios)
    lender_6 = (np.array([15_000, 5_000, 15_000, 11_000, 6_684, 9_140, 1_655, 7_413, 9_136, 35_557, 4_161, 4_385, 1_754,
                          4_385, 10_000, 2_000]) * sat,
                np.array([0.414628, 0.973946, 0.109796, 0.414628, 0.751844, 0.772273, 0.775142, 0.776345, 0.793245,
                          0.793536, 0.368923, 0.478671, 0.478671, 0.478671, 1.0, 1.0]))
    row("demo lender-6 (16 loans)", *lender_6, args.runs, args.scenarios)
    rng = np.random.default_rng(19)
    for n in (1, 3, 10, 30, 300, 1_000, 5_000):
        for mean_pd in (0.03, 0.15):
            pd = np.clip(rng.exponential(mean_pd, n), 1e-4, 1.0)
            exposure = rng.integers(1_000, 50_000, n) * sat
            row(f"{n:,} loans, mean PD {mean_pd:.0%}", exposure, pd, args.runs,
                args.scenarios if n <= 30 else 200_000)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
