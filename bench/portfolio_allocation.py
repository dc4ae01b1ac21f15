"""Auto-invest allocation: 10,000 open loans x 50,000 lenders (~5 M eligible pairs), seeded.

Times (medians of --runs, wall clock and CPU): our allocator from scratch
(building the network from the eligible pairs, then LEMON's network simplex
via pylmcf) against OR-Tools' SimpleMinCostFlow solving the same network from
scratch (adding the arcs and solving: the baseline, same run); and our warm
re-solve after 5 % of lenders change their budgets. Checks the optima agree
(and, for the re-solve, against a cold solve). Run by hand:
    .venv/bin/python bench/portfolio_allocation.py [--lenders 50000 --runs 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from ortools.graph.python import min_cost_flow

from portfolio.allocation import Allocator


def problem(lenders: int, loans: int, per_lender: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    lender = np.repeat(np.arange(lenders), per_lender)
    loan = rng.integers(0, loans, lender.size)
    key = np.unique(lender.astype(np.int64) * loans + loan)
    return dict(pair_lender=key // loans, pair_loan=key % loans,
                budget_notes=rng.integers(5, 50, lenders), remaining_notes=rng.integers(10, 100, loans),
                idle_share=rng.random(lenders), loan_priority=rng.integers(0, 101, loans))


def ortools_solve(allocator: Allocator) -> tuple[float, float, int]:
    starts, ends, caps, costs, supply = allocator.network()
    c, t = time.process_time(), time.perf_counter()
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(starts, ends, caps, costs)
    flow.set_nodes_supplies(np.arange(allocator.n_nodes), supply)
    assert flow.solve() == flow.OPTIMAL
    return time.perf_counter() - t, time.process_time() - c, int(flow.optimal_cost())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lenders", type=int, default=50_000)
    parser.add_argument("--loans", type=int, default=10_000)
    parser.add_argument("--per-lender", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    p = problem(args.lenders, args.loans, args.per_lender, seed=1)
    print(f"{args.lenders} lenders, {args.loans} loans, {p['pair_lender'].size:,} eligible pairs")
    rows: dict[str, list[float]] = {k: [] for k in ("build", "solve", "ours", "ours_cpu", "base", "base_cpu",
                                                     "warm", "warm_cpu")}
    rng = np.random.default_rng(2)
    for run in range(args.runs):
        c, t = time.process_time(), time.perf_counter()
        allocator = Allocator(**p)
        rows["build"].append(time.perf_counter() - t)
        t2 = time.perf_counter()
        result = allocator.solve()
        rows["solve"].append(time.perf_counter() - t2)
        rows["ours"].append(time.perf_counter() - t)
        rows["ours_cpu"].append(time.process_time() - c)
        ours_cost = allocator.total_cost()
        seconds, cpu, their_cost = ortools_solve(allocator)
        rows["base"].append(seconds)
        rows["base_cpu"].append(cpu)
        assert ours_cost == their_cost, (ours_cost, their_cost)
        budget = p["budget_notes"].copy()
        changed = rng.choice(args.lenders, args.lenders // 20, replace=False)
        budget[changed] = rng.integers(5, 50, changed.size)
        c, t = time.process_time(), time.perf_counter()
        allocator.update(budget_notes=budget)
        allocator.solve()
        rows["warm"].append(time.perf_counter() - t)
        rows["warm_cpu"].append(time.process_time() - c)
        cold = Allocator(**{**p, "budget_notes": budget})
        cold.solve()
        assert cold.total_cost() == allocator.total_cost()
        print(f"run {run}: ours {rows['ours'][-1]:.2f} s (build {rows['build'][-1]:.2f} + solve {rows['solve'][-1]:.2f}; "
              f"{rows['ours_cpu'][-1]:.2f} s CPU), OR-Tools {seconds:.2f} s ({cpu:.2f} s CPU), "
              f"warm re-solve {rows['warm'][-1]:.3f} s ({rows['warm_cpu'][-1]:.3f} s CPU), "
              f"notes placed {result.notes.sum():,}, same optimum (and re-solve = cold)")
    # Smaller events (one deposit, a few rule changes): how the re-solve scales with the lenders changed.
    allocator = Allocator(**p)
    allocator.solve()
    budget = p["budget_notes"].copy()
    small = []
    for count in (1, 10, 100, 500):
        changed = rng.choice(args.lenders, count, replace=False)
        budget[changed] = rng.integers(5, 50, count)
        c, t = time.process_time(), time.perf_counter()
        allocator.update(budget_notes=budget)
        allocator.solve()
        small.append(f"{count} lenders {time.perf_counter() - t:.3f} s ({time.process_time() - c:.3f} s CPU, "
                     f"{allocator.graph.warm_repair()})")
    print("re-solve after smaller changes: " + "; ".join(small))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"median: ours {med['ours']:.2f} s (build {med['build']:.2f}, solve {med['solve']:.2f}; {med['ours_cpu']:.2f} s CPU), "
          f"OR-Tools {med['base']:.2f} s ({med['base_cpu']:.2f} s CPU); ratio {med['base'] / med['ours']:.2f}x wall, "
          f"{med['base_cpu'] / med['ours_cpu']:.2f}x CPU (aim >= 3x)")
    print(f"warm re-solve {med['warm']:.3f} s ({med['warm_cpu']:.3f} s CPU; aim < 0.1 s), "
          f"{med['ours'] / med['warm']:.1f}x faster than our cold solve")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
