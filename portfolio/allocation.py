"""Auto-invest across all lenders at once: a min-cost flow in whole notes.

Unknowns: x_p, the whole notes lender i = pair_lender[p] buys in loan
j = pair_loan[p], over eligible pairs p only (``eligible_pairs`` builds them
from rules). One flow unit is one note of the marketplace's note size (the
caller converts msat to notes and back). Constraints:

* sum_i x_ij <= remaining_notes[j]           (the loan's unfunded notes)
* sum_j x_ij <= budget_notes[i]              (the lender's budget)
* x_ij <= per_loan_cap[i]                    (max notes of one lender in one loan)
* sum_{j in bucket b} x_ij <= bucket_cap[i,b] (e.g. max notes per grade or borrower)
* sum_j x_ij (el_j - c_i) <= 0               (expected-loss ceiling, a rate c_i)

Network: each lender is a node with its budget as supply; the sink takes
all of it. Lender -> [(lender, bucket) node when the lender caps that
bucket] -> loan (a first-note arc, and a further-notes arc only for lenders
whose cap is 2 or more) -> sink (remaining notes); and per lender an idle arc
to the sink, priced M, for money that cannot be placed. No arc has capacity
0, and the arcs are laid out already sorted by (start, end) as LEMON's static
graph wants (O(P), no sort, when the pairs come sorted by (lender, loan) as
``eligible_pairs`` gives them). Caps are arc capacities, so every optimum is
integral (total unimodularity). The solver is LEMON's network simplex from
``pylmcf`` (pinned), which keeps its basis between solves: ``Allocator.update``
changes budgets (two supplies), caps or remaining notes (capacities) and
re-solves warm -- repairing the basis after a small change, restarting cold
on the same network after a large one. OR-Tools' ``SimpleMinCostFlow`` solves
the same network in the tests and the benchmark as the cross-check.

The objective, lexicographically (the idle price M exceeds the cost of
any augmenting path, so (1) is never traded for (2)):

1. place as many notes as the rules allow (nothing fundable is left unfunded);
2. then minimise the sum of note costs, where a note of lender i in loan j costs
   - fairness: FAIRNESS_WEIGHT x (1 - idle_share_i). The lender with the
     highest share of idle cash is served first (LendingClub's and Prosper's
     rule); ``idle_share`` is idle cash / account value, given by the caller;
   - a seeded lottery, hash(i, j) mod lottery_weight, so that lenders whose
     idle shares are close take turns rather than one always losing ties;
     it is smaller than the fairness weight, so a gap in idle share of more
     than lottery_weight / FAIRNESS_WEIGHT (0.5 by default) always wins;
     set lottery_weight=0 for strict priority by idle share;
   - diversification: a second or later note in the same loan costs
     DIVERSIFICATION_PENALTY more, larger than any fairness or lottery
     difference. The measure: **as many distinct loans as the rules allow,
     in equal notes** -- a lender buys one note in every loan it may before
     it doubles up anywhere, which minimises the HHI of the notes it buys
     (1 / number of loans) -- and each loan is spread over as many lenders
     as possible;
   - the loan's age: ``loan_priority`` (0..100, older requests lower) breaks
     the remaining ties in favour of requests listed first.

The expected-loss ceiling couples a lender's arcs, which a network cannot
express; it is priced in (Lagrangian relaxation): lender i's arcs cost
lambda_i x el_j more and its idle money lambda_i x c_i more, and lambda_i is
found by bisection over warm re-solves. A lender still over its ceiling
after the search gets the largest price, at which no loan above its ceiling
is worth buying, so the result always honours every ceiling. Pricing in
whole notes can leave notes unplaced (up to 10 in 34 of 300 random cases
against an exact solver, bench/autoinvest_el_exact.py), so when a ceiling
binds the problem is then solved exactly (``_exact_ceilings``: an integer
program, scipy's HiGHS ``milp``) with the same objective -- most notes, then
the network's costs -- and the ceilings as constraints: over every pair up to
``EXACT_PAIRS_MAX`` pairs, above that over the constrained lenders' pairs
only (the others' notes given), and above that too the priced result stands.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pylmcf
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from portfolio.errors import PortfolioInputError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

FAIRNESS_WEIGHT: Final = 1000
LOTTERY_WEIGHT: Final = 500
DIVERSIFICATION_PENALTY: Final = 4000
PRIORITY_MAX: Final = 100
MAX_NOTES: Final = 10**9  # a budget or cap above this is a typing mistake, not a plan
BPS: Final = 10_000
LAMBDA_ROUNDS: Final = 8
EXACT_PAIRS_MAX: Final = 20_000  # the exact repair's pairs (two variables each); above, the priced result
EXACT_TIME_LIMIT_S: Final = 5.0
NO_CAP: Final = -1
IDLE_CAP: Final = MAX_NOTES  # an idle arc never binds (a budget is at most MAX_NOTES)
WARM_REPAIR: Final = "dual_greedy"  # pylmcf's basis repair for small changes
WARM_REPAIR_SHARE: Final = 0.01  # above this share of changed nodes, restart cold (see Allocator.update)


class AllocationError(PortfolioInputError):
    """Rules or inputs the allocator cannot take (negative or absurd limits, wrong shapes)."""


@dataclass(frozen=True)
class Allocation:
    """The notes bought: ``notes[p]`` for eligible pair p, and per-lender and per-loan totals."""

    notes: IntArray  # (P,)
    placed_by_lender: IntArray  # (m,)
    placed_by_loan: IntArray  # (n,)
    reason: str = ""  # why nothing could be placed, when nothing was
    el_prices: FloatArray = field(default_factory=lambda: np.zeros(0))  # lambda_i of constrained lenders


def _ints(values: npt.ArrayLike, size: int, name: str, allow_no_cap: bool = False) -> IntArray:
    array = np.asarray(values)
    if array.ndim == 0:
        array = np.full(size, array)
    if array.shape != (size,):
        raise AllocationError(f"{name} needs {size} values, one each; it has {array.size}.")
    if array.size and not np.all(np.isfinite(array.astype(np.float64))):
        raise AllocationError(f"{name} must be whole numbers.")
    if array.size and not np.all(array == np.round(array)):
        raise AllocationError(f"{name} must be whole numbers of notes.")
    out = array.astype(np.int64)
    low = NO_CAP if allow_no_cap else 0
    if out.size and out.min() < low:
        raise AllocationError(f"{name} cannot be negative.")
    if out.size and out.max() > MAX_NOTES:
        raise AllocationError(f"{name} above {MAX_NOTES:,} notes is not a real limit; check the amount.")
    return out


def _lottery(lender: IntArray, loan: IntArray, seed: int, weight: int) -> IntArray:
    if weight <= 0:
        return np.zeros(lender.size, dtype=np.int64)
    # splitmix64-style mixing: a fixed pseudo-random rank per (lender, loan, seed).
    x = (lender.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        loan.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)) ^ np.uint64(seed & 0xFFFFFFFF)
    x ^= x >> np.uint64(31)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(29)
    return (x % np.uint64(weight)).astype(np.int64)


class Allocator:
    """One allocation network, solved cold once and warm after each ``update``.

    Shapes: P eligible pairs, m lenders, n loans, B buckets.
    pair_lender, pair_loan: (P,) indices; budget_notes, idle_share,
    per_loan_cap, el_ceiling (rate, NaN = none): (m,); remaining_notes,
    el_rate (expected loss per note as a fraction), loan_priority (0..100),
    loan_bucket: (n,); bucket_cap: (m, B) with -1 for "no cap".
    """

    def __init__(
        self,
        pair_lender: npt.ArrayLike,
        pair_loan: npt.ArrayLike,
        budget_notes: npt.ArrayLike,
        remaining_notes: npt.ArrayLike,
        per_loan_cap: npt.ArrayLike = 1,
        idle_share: npt.ArrayLike | None = None,
        el_rate: npt.ArrayLike | None = None,
        el_ceiling: npt.ArrayLike | None = None,
        loan_bucket: npt.ArrayLike | None = None,
        bucket_cap: npt.ArrayLike | None = None,
        loan_priority: npt.ArrayLike | None = None,
        lottery_weight: int = LOTTERY_WEIGHT,
        seed: int = 0,
    ) -> None:
        budget = np.asarray(budget_notes)
        remaining = np.asarray(remaining_notes)
        m, n = int(budget.size), int(remaining.size)
        self.m, self.n = m, n
        self.budget = _ints(budget, m, "A budget")
        self.remaining = _ints(remaining, n, "A loan's remaining notes")
        lender = np.asarray(pair_lender, dtype=np.int64).ravel()
        loan = np.asarray(pair_loan, dtype=np.int64).ravel()
        if lender.shape != loan.shape:
            raise AllocationError("Each eligible pair needs one lender and one loan.")
        if lender.size and (lender.min() < 0 or lender.max() >= m or loan.min() < 0 or loan.max() >= n):
            raise AllocationError("An eligible pair names a lender or loan that is not in the lists.")
        # Work on pairs sorted by (lender, loan) -- eligible_pairs already gives them so,
        # and then the solver's arcs come out sorted with no sort at all.
        key = lender * n + loan
        if key.size and not np.all(key[1:] > key[:-1]):
            self.perm: IntArray | None = np.argsort(key, kind="stable")
            key = key[self.perm]
            if np.any(key[1:] == key[:-1]):
                raise AllocationError("An eligible pair is listed twice.")
            lender, loan = lender[self.perm], loan[self.perm]
        else:
            self.perm = None
        self.lender, self.loan = lender, loan
        self.cap = _ints(per_loan_cap, m, "A per-loan cap")
        share = np.zeros(m) if idle_share is None else np.asarray(idle_share, dtype=np.float64)
        if share.shape != (m,) or not np.all((share >= 0) & (share <= 1)):
            raise AllocationError("Idle share must be between 0 and 1 for every lender.")
        self.fair = np.round(FAIRNESS_WEIGHT * (1.0 - share)).astype(np.int64)
        if not 0 <= lottery_weight < FAIRNESS_WEIGHT:
            raise AllocationError("The lottery weight must be at least 0 and below the fairness weight.")
        self.priority = np.zeros(n, np.int64) if loan_priority is None else _ints(loan_priority, n, "A loan priority")
        if self.priority.size and self.priority.max() > PRIORITY_MAX:
            raise AllocationError(f"Loan priorities run from 0 to {PRIORITY_MAX}.")
        self._el_setup(el_rate, el_ceiling)
        self._bucket_setup(loan_bucket, bucket_cap)
        self.lottery = _lottery(self.lender, self.loan, seed, lottery_weight)
        base_max = FAIRNESS_WEIGHT + LOTTERY_WEIGHT + DIVERSIFICATION_PENALTY + PRIORITY_MAX
        # Any augmenting path has at most n + 1 forward arcs; the idle price M beats all of them.
        self.overflow_cost = (n + 2) * (base_max + 1)
        self.lam_max = float(4 * (self.overflow_cost + base_max))
        self._build()

    # -- set-up ---------------------------------------------------------------
    def _el_setup(self, el_rate: npt.ArrayLike | None, el_ceiling: npt.ArrayLike | None) -> None:
        m, n = self.m, self.n
        rate = np.zeros(n) if el_rate is None else np.asarray(el_rate, dtype=np.float64)
        if rate.shape != (n,) or not np.all((rate >= 0) & (rate <= 1)):
            raise AllocationError("Expected loss per note must be a fraction between 0 and 1 for every loan.")
        ceiling = np.full(m, np.nan) if el_ceiling is None else np.asarray(el_ceiling, dtype=np.float64)
        if ceiling.shape != (m,):
            raise AllocationError("Give one expected-loss ceiling per lender (NaN for none).")
        set_ = ~np.isnan(ceiling)
        if np.any(ceiling[set_] < 0):
            raise AllocationError("An expected-loss ceiling cannot be below zero.")
        if np.any(ceiling[set_] > 1):
            raise AllocationError("An expected-loss ceiling is a share of the amount lent, at most 100 %.")
        self.el_bps = np.round(rate * BPS).astype(np.int64)
        self.ceiling_bps = np.where(set_, np.round(np.nan_to_num(ceiling) * BPS), -1).astype(np.int64)
        # A ceiling only binds if some eligible loan is above it.
        above = np.zeros(m, dtype=bool)
        if self.lender.size:
            np.logical_or.at(above, self.lender, self.el_bps[self.loan] > self.ceiling_bps[self.lender])
        self.constrained = np.flatnonzero(set_ & above)
        self.lam = np.zeros(self.constrained.size)
        self.is_constrained = np.zeros(m, dtype=bool)
        self.is_constrained[self.constrained] = True

    def _bucket_setup(self, loan_bucket: npt.ArrayLike | None, bucket_cap: npt.ArrayLike | None) -> None:
        if loan_bucket is None or bucket_cap is None:
            self.bucket_nodes = np.zeros((0, 2), dtype=np.int64)
            self.bucket_cap_arr = np.zeros(0, dtype=np.int64)
            self.pair_bucket_node = np.full(self.lender.size, -1, dtype=np.int64)
            return
        bucket = np.asarray(loan_bucket, dtype=np.int64)
        caps = np.asarray(bucket_cap)
        if bucket.shape != (self.n,) or caps.ndim != 2 or caps.shape[0] != self.m:
            raise AllocationError("Bucket caps need one row per lender and a bucket for every loan.")
        if bucket.size and (bucket.min() < 0 or bucket.max() >= caps.shape[1]):
            raise AllocationError("A loan's bucket is not one of the capped buckets.")
        caps_i = _ints(caps.ravel(), caps.size, "A bucket cap", allow_no_cap=True).reshape(caps.shape)
        capped = caps_i[self.lender, bucket[self.loan]] >= 0 if self.lender.size else np.zeros(0, bool)
        keys = self.lender[capped] * caps.shape[1] + bucket[self.loan[capped]]
        unique, inverse = np.unique(keys, return_inverse=True)
        self.bucket_nodes = np.stack([unique // caps.shape[1], unique % caps.shape[1]], axis=1)
        self.bucket_cap_arr = caps_i[self.bucket_nodes[:, 0], self.bucket_nodes[:, 1]].astype(np.int64)
        self.pair_bucket_node = np.full(self.lender.size, -1, dtype=np.int64)
        self.pair_bucket_node[capped] = inverse

    def _build(self) -> None:
        """Lay the arcs out already sorted by (start, end), as LEMON's static graph wants, in O(P).

        Nodes: 0 sink, 1..m lenders (supply = budget), then (lender, bucket)
        nodes, then loans. Lender i's arcs, in order: its idle arc to the sink
        (price M: money left unplaced), its bucket arcs, its direct pair arcs by
        loan (first note; a second arc for further notes only when its cap is
        2 or more). Then each bucket node's pair arcs, then loan -> sink. No
        arc has capacity 0 by construction, and a budget change only moves
        two supplies (lender and sink).
        """
        m, n, P = self.m, self.n, self.lender.size
        nb = self.bucket_nodes.shape[0]
        self.lender_node = 1 + np.arange(m, dtype=np.int64)
        bucket_node = 1 + m + np.arange(nb, dtype=np.int64)
        self.loan_node = 1 + m + nb + np.arange(n, dtype=np.int64)
        self.n_nodes = 1 + m + nb + n
        if self.n_nodes >= 2**31 or P >= 2**30:
            raise AllocationError("The problem is too large for one network; split it.")
        self.layout_cap2 = self.cap >= 2
        second = np.flatnonzero(self.layout_cap2[self.lender])  # pairs with a further-notes arc
        pairs_of = np.bincount(self.lender, minlength=m)
        if nb == 0 and second.size == 0:
            # The common case: lender i's block is its idle arc then one arc per pair, so pair p
            # (sorted by lender) sits after p pairs and lender_p + 1 idle arcs.
            lender_start = np.concatenate([[0], np.cumsum(1 + pairs_of)])
            pair_pos = np.arange(P, dtype=np.int64) + self.lender + 1
            tail = int(lender_start[m])
        else:
            per_pair = np.ones(P, np.int64)
            per_pair[second] = 2
            direct = self.pair_bucket_node < 0
            bucket_count = np.bincount(self.bucket_nodes[:, 0], minlength=m) if nb else np.zeros(m, np.int64)
            direct_arcs = np.bincount(self.lender[direct], per_pair[direct], m).astype(np.int64)
            lender_start = np.concatenate([[0], np.cumsum(1 + bucket_count + direct_arcs)])
            # Direct pairs: position inside the lender's block, after the idle and bucket arcs.
            d_idx = np.flatnonzero(direct)
            d_len = per_pair[d_idx]
            d_cum = np.cumsum(d_len) - d_len
            before = np.cumsum(direct_arcs) - direct_arcs  # direct arcs of the lenders before each lender
            pair_pos = np.empty(P, np.int64)
            pair_pos[d_idx] = (lender_start[:m] + 1 + bucket_count - before)[self.lender[d_idx]] + d_cum
            # Pairs through a bucket node: grouped by bucket node (stable keeps loan order).
            v_idx = np.flatnonzero(~direct)
            v_idx = v_idx[np.argsort(self.pair_bucket_node[v_idx], kind="stable")]
            v_len = per_pair[v_idx]
            pair_pos[v_idx] = lender_start[m] + np.cumsum(v_len) - v_len
            tail = int(lender_start[m]) + int(v_len.sum())
        loan_pos = tail + np.arange(n, dtype=np.int64)
        n_arcs = tail + n
        # int32 node ids: what LEMON takes, and half the memory to touch.
        starts = np.empty(n_arcs, np.int32)
        ends = np.empty(n_arcs, np.int32)
        idle_pos = lender_start[:m]
        starts[idle_pos], ends[idle_pos] = self.lender_node, 0
        if nb:
            bucket_first = np.searchsorted(self.bucket_nodes[:, 0], self.bucket_nodes[:, 0], side="left")
            bucket_pos = lender_start[self.bucket_nodes[:, 0]] + 1 + (np.arange(nb) - bucket_first)
        else:
            bucket_pos = np.zeros(0, np.int64)
        starts[bucket_pos], ends[bucket_pos] = self.lender_node[self.bucket_nodes[:, 0]], bucket_node
        starts[pair_pos] = self.lender + 1  # lender node ids
        if nb:
            via = np.flatnonzero(self.pair_bucket_node >= 0)
            starts[pair_pos[via]] = bucket_node[self.pair_bucket_node[via]]
        ends[pair_pos] = self.loan + (1 + m + nb)  # loan node ids
        second_pos = pair_pos[second] + 1
        starts[second_pos], ends[second_pos] = starts[pair_pos[second]], ends[pair_pos[second]]
        starts[loan_pos], ends[loan_pos] = self.loan_node, 0
        self.idle_pos, self.bucket_pos, self.pair_pos, self.loan_pos = idle_pos, bucket_pos, pair_pos, loan_pos
        self.second, self.second_pos = second, second_pos
        self.starts, self.ends = starts, ends
        self.graph = pylmcf.Graph(self.n_nodes, starts, ends)
        self.graph.set_warm_repair(WARM_REPAIR)
        self._push_costs()
        self._push_bounds()

    def _costs(self) -> IntArray:
        lam = np.zeros(self.m)
        lam[self.constrained] = self.lam
        costs = np.empty(self.starts.size, np.int64)
        costs[self.bucket_pos] = 0
        idle = np.full(self.m, self.overflow_cost, np.int64)
        idle[self.constrained] += np.round(self.lam * self.ceiling_bps[self.constrained]).astype(np.int64)
        costs[self.idle_pos] = idle
        # Fairness, the lottery and the EL price sit on the pair arcs (lenders are fed directly).
        base = self.fair[self.lender] + self.lottery
        if self.constrained.size:
            base = base + np.round(lam[self.lender] * self.el_bps[self.loan]).astype(np.int64)
        costs[self.pair_pos] = base
        costs[self.second_pos] = base[self.second] + DIVERSIFICATION_PENALTY
        costs[self.loan_pos] = self.priority
        return costs

    def _push_costs(self) -> None:
        costs = self._costs()
        if costs.max(initial=0) >= 2**62 or float(costs.max(initial=0)) * float(self.budget.sum() + 1) >= 2**62:
            raise AllocationError("The problem is too large for exact integer costs; split it.")
        self.costs = costs
        self.graph.set_edge_costs(costs)

    def _capacities(self) -> IntArray:
        caps = np.empty(self.starts.size, np.int64)
        caps[self.idle_pos] = IDLE_CAP
        caps[self.bucket_pos] = self.bucket_cap_arr
        caps[self.pair_pos] = np.minimum(self.cap[self.lender], 1)
        caps[self.second_pos] = self.cap[self.lender[self.second]] - 1
        caps[self.loan_pos] = self.remaining
        return caps

    def _supplies(self) -> IntArray:
        supply = np.zeros(self.n_nodes, dtype=np.int64)
        supply[self.lender_node] = self.budget
        supply[0] = -self.budget.sum()
        return supply

    def _push_bounds(self) -> None:
        self.caps = self._capacities()
        self.supply = self._supplies()
        self.graph.set_edge_capacities(self.caps)
        self.graph.set_node_supply(self.supply)

    # -- solving --------------------------------------------------------------
    def _flows(self) -> IntArray:
        flows: IntArray = np.asarray(self.graph.result(), dtype=np.int64)
        return flows

    def _notes(self, flows: IntArray) -> IntArray:
        """Notes per pair, in the solver's (sorted) pair order."""
        notes: IntArray = flows[self.pair_pos]
        notes[self.second] += flows[self.second_pos]
        return notes

    def _excess(self, notes: IntArray) -> FloatArray:
        """sum_j x_ij (el_j - c_i) in note-bps for each constrained lender (> 0 means over the ceiling)."""
        per_pair = notes * (self.el_bps[self.loan] - self.ceiling_bps[self.lender])
        total = np.bincount(self.lender, per_pair.astype(np.float64), self.m)
        return np.asarray(total[self.constrained], dtype=np.float64)

    def solve(self) -> Allocation:
        """Solve (warm after the first call) and return the allocation; prices the EL ceilings if any."""
        self.graph.solve()
        notes = self._notes(self._flows())
        if self.constrained.size:
            self._price_ceilings()
            notes = self._exact_ceilings(self._notes(self._flows()))
        reason = ""
        if notes.sum() == 0:
            reason = self._why_empty()
        by_lender = np.bincount(self.lender, notes, self.m).astype(np.int64)
        by_loan = np.bincount(self.loan, notes, self.n).astype(np.int64)
        if self.perm is not None:  # back to the caller's pair order
            caller = np.empty_like(notes)
            caller[self.perm] = notes
            notes = caller
        return Allocation(notes=notes, placed_by_lender=by_lender, placed_by_loan=by_loan, reason=reason,
                          el_prices=self.lam.copy())

    def _resolve_with(self, lam: FloatArray) -> FloatArray:
        self.lam = lam
        self._push_costs()
        self.graph.solve()
        return self._excess(self._notes(self._flows()))

    def _price_ceilings(self) -> None:
        """Bisection on log2(lambda) per constrained lender, then the largest price for any still over."""
        excess = self._excess(self._notes(self._flows()))
        if not np.any(excess > 0):
            return
        low = np.full(self.constrained.size, -40.0)  # lambda = lam_max * 2**low: "free"
        high = np.zeros(self.constrained.size)  # lambda = lam_max: always within the ceiling
        for _ in range(LAMBDA_ROUNDS):
            mid = 0.5 * (low + high)
            excess = self._resolve_with(self.lam_max * np.exp2(mid))
            over = excess > 0
            low = np.where(over, mid, low)
            high = np.where(over, high, mid)
        excess = self._resolve_with(self.lam_max * np.exp2(high))
        while np.any(excess > 0):  # other lenders' prices moved: pin the ones still over
            high[excess > 0] = 0.0
            excess = self._resolve_with(self.lam_max * np.exp2(high))

    def _exact_ceilings(self, notes: IntArray) -> IntArray:
        """The constrained lenders' notes from an integer program, everyone else's kept (see the module doc).

        Variables per pair of a constrained lender: a first note (0..1) and further notes (0..cap - 1), as in
        the network, so the diversification penalty is the same. Minimise sum (cost - M) x: M (the idle
        price) exceeds every cost, so more notes always win, then the cheaper ones."""
        # Every pair when the problem is small enough (then the answer is the exact optimum of the whole
        # problem), else the constrained lenders' pairs only (exact for them, the others' notes given).
        mine = np.arange(self.lender.size) if self.lender.size <= EXACT_PAIRS_MAX else \
            np.flatnonzero(self.is_constrained[self.lender])
        if not mine.size or mine.size > EXACT_PAIRS_MAX:
            return notes
        lender, loan = self.lender[mine], self.loan[mine]
        cap = self.cap[lender]
        k = mine.size
        others = np.ones(self.lender.size, dtype=bool)
        others[mine] = False
        room = self.remaining - np.bincount(self.loan[others], notes[others], self.n)
        base = (self.fair[lender] + self.lottery[mine] + self.priority[loan]).astype(np.float64)
        cost = np.concatenate([base, base + DIVERSIFICATION_PENALTY]) - float(self.overflow_cost)
        upper = np.concatenate([np.minimum(cap, 1), np.maximum(cap - 1, 0)]).astype(np.float64)
        rows_of = np.concatenate([np.arange(k), np.arange(k)])  # each variable's pair
        who = np.unique(lender)
        index_of = np.full(self.m, -1, np.int64)
        index_of[who] = np.arange(who.size)
        blocks = []
        # Budgets: one row per constrained lender.
        blocks.append((sp.csr_matrix((np.ones(2 * k), (index_of[lender[rows_of]], np.arange(2 * k))),
                                     shape=(who.size, 2 * k)), self.budget[who].astype(np.float64)))
        # Ceilings: sum x (el - c) <= 0 in note-bps, for the lenders whose ceiling binds.
        bound = self.is_constrained[lender[rows_of]]
        excess = (self.el_bps[loan] - self.ceiling_bps[lender]).astype(np.float64)[rows_of]
        blocks.append((sp.csr_matrix((excess[bound], (index_of[lender[rows_of]][bound], np.arange(2 * k)[bound])),
                                     shape=(who.size, 2 * k)), np.zeros(who.size)))
        # Loans: what the other lenders left.
        loans_used, loan_row = np.unique(loan, return_inverse=True)
        blocks.append((sp.csr_matrix((np.ones(2 * k), (loan_row[rows_of], np.arange(2 * k))),
                                     shape=(loans_used.size, 2 * k)), np.maximum(room[loans_used], 0).astype(float)))
        # Bucket caps (lender, bucket) for the pairs that go through one.
        via = self.pair_bucket_node[mine]
        if np.any(via >= 0):
            nodes, node_row = np.unique(via[via >= 0], return_inverse=True)
            pairs = np.flatnonzero(via >= 0)
            blocks.append((sp.csr_matrix((np.ones(2 * pairs.size), (np.concatenate([node_row, node_row]),
                                                                    np.concatenate([pairs, pairs + k]))),
                                         shape=(nodes.size, 2 * k)), self.bucket_cap_arr[nodes].astype(float)))
        matrix = sp.vstack([b[0] for b in blocks]).tocsr()
        upper_rows = np.concatenate([b[1] for b in blocks])
        found = milp(cost, constraints=LinearConstraint(matrix, -np.inf, upper_rows), integrality=np.ones(2 * k),
                     bounds=Bounds(np.zeros(2 * k), upper), options={"time_limit": EXACT_TIME_LIMIT_S})
        if found.x is None or found.status not in (0, 1):
            return notes  # no answer in time: the priced allocation (ceilings honoured) stands
        x = np.round(found.x).astype(np.int64)
        if x.sum() < notes[mine].sum():  # stopped early on a worse answer: keep the priced one
            return notes
        exact = notes.copy()
        exact[mine] = x[:k] + x[k:]
        return exact

    def _why_empty(self) -> str:
        if self.lender.size == 0:
            return "No open request matches these rules."
        if self.budget.sum() == 0:
            return "There is no money to invest."
        if self.remaining.sum() == 0:
            return "Every matching request is already fully funded."
        if np.all(self.cap[self.lender] == 0):
            return "The maximum per loan is below one note."
        return "The caps and the expected-loss ceiling leave no note that can be bought."

    def update(
        self,
        budget_notes: npt.ArrayLike | None = None,
        remaining_notes: npt.ArrayLike | None = None,
        per_loan_cap: npt.ArrayLike | None = None,
        idle_share: npt.ArrayLike | None = None,
    ) -> None:
        """Change budgets, remaining notes, caps or idle shares; the next ``solve`` is warm.

        The eligible pairs, buckets and which lenders have a binding EL
        ceiling are fixed: when those change, build a new Allocator. A cap
        moving a lender across 1 / 2 notes per loan adds or drops its
        further-note arcs, so the network is rebuilt (the next solve is cold).

        Only what changed is pushed to the solver (a budget moves two node
        supplies; idle arcs never bind, so no capacity changes). How the
        solver restarts depends on how much changed. A dual repair of the
        previous basis (measured CPU, 50,000 lenders x 10,000 loans, cold 5.4 s)
        costs 0.1 s for one changed lender, 0.5 s for ten, 1.6 s for a
        hundred, 4.3 s for 500 (0.8 % of the nodes), and more than a cold
        solve at 4 % (20,000 x 4,000): above ``WARM_REPAIR_SHARE`` of the
        nodes the solver starts cold on the same network (no rebuild).
        """
        costs_changed = bounds_changed = False
        changed_nodes = 0
        if budget_notes is not None:
            budget = _ints(budget_notes, self.m, "A budget")
            changed_nodes += int(np.count_nonzero(budget != self.budget))
            self.budget = budget
        if remaining_notes is not None:
            remaining = _ints(remaining_notes, self.n, "A loan's remaining notes")
            changed_nodes += int(np.count_nonzero(remaining != self.remaining))
            bounds_changed = bounds_changed or not np.array_equal(remaining, self.remaining)
            self.remaining = remaining
        if per_loan_cap is not None:
            cap = _ints(per_loan_cap, self.m, "A per-loan cap")
            changed_nodes += int(np.count_nonzero(cap != self.cap))
            bounds_changed = bounds_changed or not np.array_equal(cap, self.cap)
            self.cap = cap
        if idle_share is not None:
            share = np.asarray(idle_share, dtype=np.float64)
            if share.shape != (self.m,) or not np.all((share >= 0) & (share <= 1)):
                raise AllocationError("Idle share must be between 0 and 1 for every lender.")
            self.fair = np.round(FAIRNESS_WEIGHT * (1.0 - share)).astype(np.int64)
            costs_changed = True
        if not np.array_equal(self.cap >= 2, self.layout_cap2):
            self._build()
            return
        many = changed_nodes > WARM_REPAIR_SHARE * (self.m + self.n)
        self.graph.set_warm_repair("repair_only" if many or costs_changed else WARM_REPAIR)
        if bounds_changed:
            self.caps = self._capacities()
            self.graph.set_edge_capacities(self.caps)
        self.supply = self._supplies()
        self.graph.set_node_supply(self.supply)
        if costs_changed:
            self._push_costs()

    def network(self) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray]:
        """(starts, ends, capacities, costs, supplies) in the solver's arc order, for the cross-check."""
        return (self.starts.astype(np.int64), self.ends.astype(np.int64), self.caps.copy(), self.costs.copy(),
                self.supply.copy())

    def total_cost(self) -> int:
        return int(self.graph.total_cost())


def allocate(
    pair_lender: npt.ArrayLike,
    pair_loan: npt.ArrayLike,
    budget_notes: npt.ArrayLike,
    remaining_notes: npt.ArrayLike,
    **options: object,
) -> Allocation:
    """One-shot allocation; see ``Allocator`` for the options and shapes."""
    return Allocator(pair_lender, pair_loan, budget_notes, remaining_notes, **options).solve()  # type: ignore[arg-type]


def eligible_pairs(
    loan_grade: npt.ArrayLike,
    loan_frequency: npt.ArrayLike,
    loan_purpose: npt.ArrayLike,
    loan_term_days: npt.ArrayLike,
    loan_rate_bps: npt.ArrayLike,
    allowed_grades: npt.ArrayLike,
    allowed_frequencies: npt.ArrayLike,
    allowed_purposes: npt.ArrayLike,
    max_term_days: npt.ArrayLike,
    min_rate_bps: npt.ArrayLike,
    loan_borrower: npt.ArrayLike | None = None,
    lender_user: npt.ArrayLike | None = None,
) -> tuple[IntArray, IntArray]:
    """(pair_lender, pair_loan) of every lender-loan pair the lender's rules allow, sorted.

    Loans: grade 0..4, frequency 0..2, purpose 0..P-1 codes, term in days and
    rate in bps, shape (n,). Lenders: bit masks of allowed grades (bit g),
    frequencies and purposes, the longest term and lowest rate they accept,
    shape (m,). A lender never funds their own request (optional
    loan_borrower / lender_user ids). Grouped by loan category, so the work
    is proportional to the pairs produced, not to m x n.
    """
    grade = np.asarray(loan_grade, dtype=np.int64)
    freq = np.asarray(loan_frequency, dtype=np.int64)
    purpose = np.asarray(loan_purpose, dtype=np.int64)
    term = np.asarray(loan_term_days, dtype=np.int64)
    rate = np.asarray(loan_rate_bps, dtype=np.int64)
    g_mask = np.asarray(allowed_grades, dtype=np.int64)
    f_mask = np.asarray(allowed_frequencies, dtype=np.int64)
    p_mask = np.asarray(allowed_purposes, dtype=np.int64)
    term_max = np.asarray(max_term_days, dtype=np.int64)
    rate_min = np.asarray(min_rate_bps, dtype=np.int64)
    if np.any(term_max < 0) or np.any(rate_min < 0):
        raise AllocationError("Term and rate limits cannot be negative.")
    category = (grade * 3 + freq) * 64 + purpose
    lenders_out: list[IntArray] = []
    loans_out: list[IntArray] = []
    for cat in np.unique(category):
        g, f, p = int(cat // 64 // 3), int(cat // 64 % 3), int(cat % 64)
        who = np.flatnonzero(((g_mask >> g) & 1).astype(bool) & ((f_mask >> f) & 1).astype(bool)
                             & ((p_mask >> p) & 1).astype(bool))
        which = np.flatnonzero(category == cat)
        if not who.size or not which.size:
            continue
        ll = np.repeat(who, which.size)
        jj = np.tile(which, who.size)
        ok = (term[jj] <= term_max[ll]) & (rate[jj] >= rate_min[ll])
        if loan_borrower is not None and lender_user is not None:
            ok &= np.asarray(loan_borrower)[jj] != np.asarray(lender_user)[ll]
        lenders_out.append(ll[ok])
        loans_out.append(jj[ok])
    if not lenders_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lender = np.concatenate(lenders_out)
    loan = np.concatenate(loans_out)
    order = np.lexsort((loan, lender))
    return lender[order].astype(np.int64), loan[order].astype(np.int64)


def whole_notes(
    pair_lender: npt.ArrayLike,
    pair_loan: npt.ArrayLike,
    preferred: npt.ArrayLike,
    note_units: npt.ArrayLike,
    budget_units: npt.ArrayLike,
    remaining_units: npt.ArrayLike,
    lender_order: npt.ArrayLike,
    loan_order: npt.ArrayLike,
    el_bps: npt.ArrayLike | None = None,
    ceiling_bps: npt.ArrayLike | None = None,
    pair_group: npt.ArrayLike | None = None,
    group_room_units: npt.ArrayLike | None = None,
) -> IntArray:
    """Units per pair in whole notes of each lender's size: 0 or note_units[lender], never a part of one.

    The flow places units and, when a budget is short, spreads it over more loans in smaller notes; a
    lender who chose a note size buys notes of that size. From the flow's answer (``preferred`` units per
    pair): lenders in ``lender_order`` (the flow's fairness: most idle first), each buys a whole note in the
    loans the flow gave it most of first (then by ``loan_order``), then in any other of its eligible loans,
    wherever the loan has room for the whole note, its budget lasts, its expected-loss ceiling holds
    (sum of (el - ceiling) over its notes <= 0, ceiling -1 for none) and the pair's group (a borrower cap)
    has room. Afterwards no lender with budget for one more note has an eligible loan with room for it,
    within its ceiling and caps (checked in the tests).
    """
    lender = np.asarray(pair_lender, dtype=np.int64)
    loan = np.asarray(pair_loan, dtype=np.int64)
    want = np.asarray(preferred, dtype=np.int64)
    size = np.asarray(note_units, dtype=np.int64)
    budget = np.asarray(budget_units, dtype=np.int64).copy()
    room = np.asarray(remaining_units, dtype=np.int64).copy()
    el = np.zeros(room.size, np.int64) if el_bps is None else np.asarray(el_bps, dtype=np.int64)
    ceiling = np.full(size.size, -1, np.int64) if ceiling_bps is None else np.asarray(ceiling_bps, dtype=np.int64)
    group = np.full(lender.size, -1, np.int64) if pair_group is None else np.asarray(pair_group, dtype=np.int64)
    group_room = np.zeros(0, np.int64) if group_room_units is None else \
        np.asarray(group_room_units, dtype=np.int64).copy()
    rank = np.empty(size.size, np.int64)
    rank[np.asarray(lender_order, dtype=np.int64)] = np.arange(size.size)
    priority = np.asarray(loan_order, dtype=np.int64)
    out = np.zeros(lender.size, np.int64)
    excess = np.zeros(size.size, np.int64)
    # Pairs by lender (fairness order), the flow's preferred loans first, then the loan's place in the list.
    order = np.lexsort((priority[loan], -want, rank[lender])).tolist()
    changed = True
    while changed:  # again until nothing more fits: a note below the ceiling can make room for one above it
        changed = False
        for p in order:
            i, j, g = int(lender[p]), int(loan[p]), int(group[p])
            k = int(size[i])
            if out[p] or k <= 0 or budget[i] < k or room[j] < k or (g >= 0 and group_room[g] < k):
                continue
            step = int(el[j]) - int(ceiling[i]) if ceiling[i] >= 0 else 0
            if excess[i] + step > 0:
                continue
            out[p] = k
            budget[i] -= k
            room[j] -= k
            excess[i] += step
            if g >= 0:
                group_room[g] -= k
            changed = True
    return out
