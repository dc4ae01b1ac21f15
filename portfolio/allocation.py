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

Network (arcs sorted as LEMON wants): source -> lender (budget) -> [(lender,
bucket) node when the lender caps that bucket] -> loan (two parallel arcs:
the first note, then any further notes) -> sink (remaining notes), and an
overflow arc source -> sink for money that cannot be placed. Caps are arc
capacities, so every optimum is integral (total unimodularity). The solver
is LEMON's network simplex from ``pylmcf`` (pinned), which keeps its basis
between solves: ``Allocator.update`` changes budgets, caps or remaining
notes and re-solves warm. OR-Tools' ``SimpleMinCostFlow`` solves the same
network in the tests as the cross-check.

The objective, lexicographically (the overflow price M exceeds the cost of
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
is worth buying, so the result always honours every ceiling. An LP (HiGHS)
is the exact oracle in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pylmcf

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
NO_CAP: Final = -1


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
        self.lender = np.asarray(pair_lender, dtype=np.int64).ravel()
        self.loan = np.asarray(pair_loan, dtype=np.int64).ravel()
        if self.lender.shape != self.loan.shape:
            raise AllocationError("Each eligible pair needs one lender and one loan.")
        if self.lender.size and (self.lender.min() < 0 or self.lender.max() >= m
                                 or self.loan.min() < 0 or self.loan.max() >= n):
            raise AllocationError("An eligible pair names a lender or loan that is not in the lists.")
        if self.lender.size and np.unique(self.lender * n + self.loan).size != self.lender.size:
            raise AllocationError("An eligible pair is listed twice.")
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
        m, n, P = self.m, self.n, self.lender.size
        nb = self.bucket_nodes.shape[0]
        k = self.constrained.size
        # Node ids: 0 sink, 1 source, 2..m+1 lenders, then bucket nodes, then loans.
        lender_node = 2 + np.arange(m, dtype=np.int64)
        bucket_node = 2 + m + np.arange(nb, dtype=np.int64)
        loan_node = 2 + m + nb + np.arange(n, dtype=np.int64)
        self.n_nodes = 2 + m + nb + n
        pair_from = lender_node[self.lender] if P else np.zeros(0, np.int64)
        via_bucket = self.pair_bucket_node >= 0
        pair_from[via_bucket] = bucket_node[self.pair_bucket_node[via_bucket]]
        is_constrained = np.zeros(m, dtype=bool)
        is_constrained[self.constrained] = True
        self.is_constrained = is_constrained
        free = np.flatnonzero(~is_constrained)
        base_max = FAIRNESS_WEIGHT + LOTTERY_WEIGHT + DIVERSIFICATION_PENALTY + PRIORITY_MAX
        # Any augmenting path has at most n + 1 forward arcs; M beats all of them.
        self.overflow_cost = (n + 2) * (base_max + 1)
        self.lam_max = float(4 * (self.overflow_cost + base_max))
        parts_start = [
            np.array([1], np.int64), np.full(free.size, 1, np.int64),  # overflow; source -> free lenders
            lender_node[self.constrained],  # idle arcs of constrained lenders
            lender_node[self.bucket_nodes[:, 0]] if nb else np.zeros(0, np.int64),  # lender -> bucket
            pair_from, pair_from,  # first note, further notes
            loan_node,  # loan -> sink
        ]
        parts_end = [
            np.array([0], np.int64), lender_node[free], np.zeros(k, np.int64),
            bucket_node, loan_node[self.loan], loan_node[self.loan], np.zeros(n, np.int64),
        ]
        sizes = [p.size for p in parts_start]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        starts = np.concatenate(parts_start)
        ends = np.concatenate(parts_end)
        key = starts * self.n_nodes + ends
        self.order = np.argsort(key, kind="stable")  # LEMON wants arcs sorted by (start, end)
        self.inverse = np.empty_like(self.order)
        self.inverse[self.order] = np.arange(self.order.size)
        self.starts, self.ends = starts, ends
        self.graph = pylmcf.Graph(self.n_nodes, starts[self.order].astype(np.int32), ends[self.order].astype(np.int32))
        self.graph.set_warm_repair("dual_greedy")
        self.lender_node, self.loan_node = lender_node, loan_node
        self._push_costs()
        self._push_bounds()

    def _segment(self, index: int) -> slice:
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))

    def _costs(self) -> IntArray:
        free = ~self.is_constrained
        lam = np.zeros(self.m)
        lam[self.constrained] = self.lam
        base = self.lottery + (self.fair[self.lender] * self.is_constrained[self.lender])
        priced = np.round(lam[self.lender] * self.el_bps[self.loan]).astype(np.int64)
        idle = self.overflow_cost + np.round(self.lam * self.ceiling_bps[self.constrained]).astype(np.int64)
        parts = [
            np.array([self.overflow_cost], np.int64), self.fair[free],
            # Constrained lenders are fed directly (their own supply); fairness
            # moves onto their pair arcs so placed minus idle matches the rest.
            idle,
            np.zeros(self.bucket_nodes.shape[0], np.int64),
            base + priced, base + priced + DIVERSIFICATION_PENALTY,
            self.priority,
        ]
        return np.concatenate(parts).astype(np.int64)

    def _push_costs(self) -> None:
        costs = self._costs()
        if costs.max(initial=0) >= 2**62 or float(costs.max(initial=0)) * float(self.budget.sum() + 1) >= 2**62:
            raise AllocationError("The problem is too large for exact integer costs; split it.")
        self.graph.set_edge_costs(np.ascontiguousarray(costs[self.order]))

    def _push_bounds(self) -> None:
        m = self.m
        free = ~self.is_constrained
        pair_cap = np.minimum(self.cap[self.lender], self.remaining[self.loan])
        capacities = np.concatenate([
            np.array([self.budget[free].sum()], np.int64), self.budget[free],
            self.budget[self.constrained],
            self.bucket_cap_arr,
            np.minimum(pair_cap, 1), np.maximum(pair_cap - 1, 0),
            self.remaining,
        ]).astype(np.int64)
        supply = np.zeros(self.n_nodes, dtype=np.int64)
        supply[1] = self.budget[free].sum()
        supply[self.lender_node[self.constrained]] = self.budget[self.constrained]
        supply[0] = -self.budget.sum()
        del m
        self.graph.set_edge_capacities(np.ascontiguousarray(capacities[self.order]))
        self.graph.set_node_supply(supply)

    # -- solving --------------------------------------------------------------
    def _flows(self) -> IntArray:
        flows: IntArray = np.asarray(self.graph.result(), dtype=np.int64)[self.inverse]
        return flows

    def _notes(self, flows: IntArray) -> IntArray:
        return flows[self._segment(4)] + flows[self._segment(5)]

    def _excess(self, notes: IntArray) -> FloatArray:
        """sum_j x_ij (el_j - c_i) in note-bps for each constrained lender (> 0 means over the ceiling)."""
        per_pair = notes * (self.el_bps[self.loan] - self.ceiling_bps[self.lender])
        total = np.bincount(self.lender, per_pair.astype(np.float64), self.m)
        return np.asarray(total[self.constrained], dtype=np.float64)

    def solve(self) -> Allocation:
        """Solve (warm after the first call) and return the allocation; prices the EL ceilings if any."""
        self.graph.solve()
        if self.constrained.size:
            self._price_ceilings()
        notes = self._notes(self._flows())
        reason = ""
        if notes.sum() == 0:
            reason = self._why_empty()
        return Allocation(
            notes=notes,
            placed_by_lender=np.bincount(self.lender, notes, self.m).astype(np.int64),
            placed_by_loan=np.bincount(self.loan, notes, self.n).astype(np.int64),
            reason=reason,
            el_prices=self.lam.copy(),
        )

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
        low[excess <= 0] = -40.0
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

        The network's shape (eligible pairs, buckets, which lenders have a
        binding EL ceiling) is fixed: when those change, build a new Allocator.
        """
        costs_changed = False
        if budget_notes is not None:
            self.budget = _ints(budget_notes, self.m, "A budget")
        if remaining_notes is not None:
            self.remaining = _ints(remaining_notes, self.n, "A loan's remaining notes")
        if per_loan_cap is not None:
            self.cap = _ints(per_loan_cap, self.m, "A per-loan cap")
        if idle_share is not None:
            share = np.asarray(idle_share, dtype=np.float64)
            if share.shape != (self.m,) or not np.all((share >= 0) & (share <= 1)):
                raise AllocationError("Idle share must be between 0 and 1 for every lender.")
            self.fair = np.round(FAIRNESS_WEIGHT * (1.0 - share)).astype(np.int64)
            costs_changed = True
        self._push_bounds()
        if costs_changed:
            self._push_costs()

    def network(self) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray]:
        """(starts, ends, capacities, costs, supplies) in the solver's arc order, for the cross-check."""
        return (
            self.starts[self.order], self.ends[self.order],
            np.asarray(self.graph.get_edge_capacities()), np.asarray(self.graph.get_edge_costs()),
            np.asarray(self.graph.get_node_supply()),
        )

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
