"""Auto-invest with expected-loss ceilings: the allocator's notes against an exact integer program.

300 random cases (8 lenders x 10 loans, 70 % of pairs eligible, budgets 0-8
notes, loans 0-11 notes, per-loan caps 0-3, EL 0-12 % per loan, half the
lenders with a ceiling of 2-8 %), as in tests/portfolio/test_allocation.py.
The reference: scipy's ``milp`` (HiGHS) maximising the notes placed under the
same budgets, caps, loan sizes and ceilings. Prints in how many cases the
allocator placed fewer notes, by how many at most, and whether every ceiling
held; then the same with the exact repair switched off (the priced result
alone, what the allocator did before issue 19).
Run by hand:  .venv/bin/python bench/autoinvest_el_exact.py [--cases 300]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from portfolio import allocation as al


def case(seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m, n = 8, 10
    lender, loan = np.nonzero(rng.random((m, n)) < 0.7)
    problem = dict(pair_lender=lender, pair_loan=loan, budget_notes=rng.integers(0, 9, m),
                   remaining_notes=rng.integers(0, 12, n), per_loan_cap=rng.integers(0, 4, m),
                   idle_share=rng.random(m))
    el = np.round(rng.uniform(0.0, 0.12, n), 4)
    ceiling = np.where(rng.random(m) < 0.5, np.round(rng.uniform(0.02, 0.08, m), 4), np.nan)
    return problem, el, ceiling


def most_notes(problem: dict, el: np.ndarray, ceiling: np.ndarray) -> int:
    i, j = problem["pair_lender"], problem["pair_loan"]
    m, n, p = len(problem["budget_notes"]), len(problem["remaining_notes"]), len(i)
    rows = [sp.csr_matrix((np.ones(p), (i, np.arange(p))), shape=(m, p)),
            sp.csr_matrix((np.ones(p), (j, np.arange(p))), shape=(n, p))]
    upper = [np.asarray(problem["budget_notes"], float), np.asarray(problem["remaining_notes"], float)]
    has = ~np.isnan(ceiling)
    bps = np.round(el * 10_000)[j] - np.round(np.nan_to_num(ceiling) * 10_000)[i]
    keep = has[i]
    rows.append(sp.csr_matrix((bps[keep], (i[keep], np.arange(p)[keep])), shape=(m, p)))
    upper.append(np.zeros(m))
    found = milp(-np.ones(p), constraints=LinearConstraint(sp.vstack(rows), -np.inf, np.concatenate(upper)),
                 integrality=np.ones(p), bounds=Bounds(np.zeros(p), np.asarray(problem["per_loan_cap"])[i]))
    return int(round(-found.fun))


def run(cases: int) -> tuple[int, int, bool, float]:
    short, worst, held, spent = 0, 0, True, 0.0
    for seed in range(cases):
        problem, el, ceiling = case(seed)
        t = time.perf_counter()
        result = al.Allocator(**problem, el_rate=el, el_ceiling=ceiling).solve()
        spent += time.perf_counter() - t
        x, i, j = result.notes, problem["pair_lender"], problem["pair_loan"]
        over = np.bincount(i, x * (np.round(el * 10_000)[j] - np.round(np.nan_to_num(ceiling) * 10_000)[i]), 8)
        held = held and bool(np.all(over[~np.isnan(ceiling)] <= 0))
        gap = most_notes(problem, el, ceiling) - int(x.sum())
        short += gap > 0
        worst = max(worst, gap)
    return short, worst, held, spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args()
    for label, limit in (("with the exact repair", al.EXACT_PAIRS_MAX), ("priced only (before)", 0)):
        al.EXACT_PAIRS_MAX = limit  # type: ignore[misc]
        short, worst, held, spent = run(args.cases)
        print(f"{label}: fewer notes than the exact solver in {short} of {args.cases} cases, at most {worst} fewer; "
              f"every ceiling held: {held}; allocator {spent / args.cases * 1000:.1f} ms a case")


if __name__ == "__main__":
    main()
