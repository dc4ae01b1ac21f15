"""Who gets what of a repayment: the service fee, and each note's exact share over the loan's life.

The rules, as the loan pages state them:

1. The platform's service fee is a share of the lenders' income only (the
   interest and late fees the borrower pays), never of principal: a lender
   whose loan is repaid in full gets back at least every msat lent. The fee
   is counted on the loan's cumulative income and rounded down, so its
   roundings never add up against the lenders.
2. Each note is entitled to its pro-rata part — by the principal it lent —
   of everything the lenders have received from the loan so far. After every
   repayment each note holds exactly that entitlement rounded down to the
   msat: never more, less by under 1 msat, never a negative share, and the
   same for every note whatever its position.
3. The under-1-msat remainders (fewer msats than there are notes) wait in
   the loan's escrow account and are paid out when the loan is repaid or
   written off: by largest remainder, ties going round the notes in turn
   from loan to loan. After a write-off, recoveries are shared the same way
   counting from the write-off, so nothing waits for a recovery that may
   never come.
4. Principal repaid is attributed the same way (each note's repaid principal
   is its entitlement rounded down), so every note's principal is exactly
   repaid when the loan is. A note's income is its cash less its principal.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from marketplace.domain.errors import InvalidInput
from marketplace.domain.messages import N_

BPS_PER_UNIT = 10_000
SMALL = 16  # up to this many notes, floors in Python integers; above, in 64-bit arrays


def service_fee_msat(income_before_msat: int, income_msat: int, fee_bps: int) -> int:
    """The fee on `income_msat` of new income, counted on the loan's cumulative income, rounded down."""
    if income_before_msat < 0 or income_msat < 0:
        raise InvalidInput(N_("Income cannot be negative."))
    if not 0 <= fee_bps <= BPS_PER_UNIT:
        raise InvalidInput(N_("The service fee must be between 0 and 10,000 basis points of income."))
    after = (income_before_msat + income_msat) * fee_bps // BPS_PER_UNIT
    return after - income_before_msat * fee_bps // BPS_PER_UNIT


@dataclass(frozen=True)
class Shares:
    cash_msat: NDArray[np.int64]
    principal_msat: NDArray[np.int64]
    # Msats left in escrow (not yet any one note's) before and after.
    held_before_msat: int
    held_after_msat: int

    @property
    def held_change_msat(self) -> int:
        return self.held_after_msat - self.held_before_msat


@dataclass(frozen=True)
class Notes:
    """A loan's notes as the share-out sees them: weights (original principal) in note order."""

    weights: NDArray[np.int64]

    def __post_init__(self) -> None:
        w = self.weights
        if w.ndim != 1 or len(w) == 0 or int(w.min()) < 0 or int(w.sum()) == 0:
            raise InvalidInput(N_("A repayment needs notes with principal to share it by."))
        if int(w.sum()) >= 2**62:
            raise InvalidInput(N_("The notes' principal is too large to share exactly."))
        # The last few amounts' floors: a payment's "after" is the next one's "before".
        object.__setattr__(self, "_recent", {})

    @classmethod
    def of(cls, weights: Sequence[int]) -> "Notes":
        if not weights:
            raise InvalidInput(N_("A repayment needs notes with principal to share it by."))
        return cls(np.asarray(weights, dtype=np.int64))

    @cached_property
    def total(self) -> int:
        return int(self.weights.sum())

    @cached_property
    def _weights_list(self) -> list[int]:
        return [int(w) for w in self.weights]

    @cached_property
    def _weights_u64(self) -> NDArray[np.uint64]:
        return self.weights.astype(np.uint64)

    @cached_property
    def _weights_f64(self) -> NDArray[np.float64]:
        return self.weights.astype(np.float64)

    def floors(self, amount_msat: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Each note's exact part of `amount_msat` rounded down, and the remainders (amount x w mod W).

        Exact in 64-bit arrays: amount = q W + r, so the part is q w + floor(r w / W); r w may
        pass 2^64, so floor(r w / W) is estimated in floating point and corrected with the
        remainder r w - estimate W, computed modulo 2^64 (it is small, so that is exact).
        """
        recent: dict[int, tuple[NDArray[np.int64], NDArray[np.int64]]] = getattr(self, "_recent")
        found = recent.get(amount_msat)
        if found is not None:
            return found
        total = self.total
        if len(self.weights) <= SMALL:  # a few notes: Python's integers beat array set-up
            values = [amount_msat * w for w in self._weights_list]
            exact = (np.array([v // total for v in values], dtype=np.int64),
                     np.array([v % total for v in values], dtype=np.int64))
            if len(recent) >= 4:
                recent.clear()
            recent[amount_msat] = exact
            return exact
        q, r = divmod(amount_msat, total)
        estimate = np.floor(self._weights_f64 * (r / total)).astype(np.int64)
        # Array arithmetic on uint64 wraps silently: the difference is exact because it is small.
        remainder = (self._weights_u64 * np.uint64(r) - estimate.astype(np.uint64) * np.uint64(total)).view(np.int64)
        if (remainder < 0).any() or (remainder >= total).any():
            low = remainder < 0
            estimate -= low
            remainder += low * total
            high = remainder >= total
            estimate += high
            remainder -= high * total
        floors = q * self.weights + estimate if q else estimate
        if len(recent) >= 4:
            recent.clear()
        recent[amount_msat] = (floors, remainder)
        return floors, remainder


def share_out(notes: Notes, cash_before_msat: int, cash_after_msat: int, principal_before_msat: int,
              principal_after_msat: int, *, closing: bool = False, rotation: int = 0,
              cash_base_msat: int = 0) -> Shares:
    """Each note's cash and principal from the lenders' cumulative totals moving before -> after.

    With `closing`, the held remainders are paid out too (rule 3), ties rotated by `rotation`. Cash is
    shared counting from `cash_base_msat` (the total when the remainders were paid out at a write-off).
    """
    if not 0 <= cash_before_msat <= cash_after_msat or not 0 <= principal_before_msat <= principal_after_msat:
        raise InvalidInput(N_("The lenders' totals can only grow."))
    if principal_after_msat > cash_after_msat:
        raise InvalidInput(N_("The lenders cannot be repaid more principal than cash."))
    if principal_after_msat > notes.total:
        raise InvalidInput(N_("The notes cannot be repaid more principal than they lent."))
    if not 0 <= cash_base_msat <= cash_before_msat:
        raise InvalidInput(N_("Cash is shared from a total already reached."))
    way = share_out_small if len(notes.weights) <= SMALL else share_out_arrays
    return way(notes, cash_before_msat - cash_base_msat, cash_after_msat - cash_base_msat,
               principal_before_msat, principal_after_msat, closing, rotation)


def share_out_arrays(notes: Notes, cash_before_msat: int, cash_after_msat: int, principal_before_msat: int,
                     principal_after_msat: int, closing: bool, rotation: int) -> Shares:
    """share_out in 64-bit arrays: for many notes (any count gives the same msat)."""
    before, _ = notes.floors(cash_before_msat)
    after, remainders = notes.floors(cash_after_msat)
    cash = after - before
    held_before = cash_before_msat - int(before.sum())
    held_after = cash_after_msat - int(after.sum())
    if closing and held_after:
        cash[bonus_order(remainders, rotation)[:held_after]] += 1
        held_after = 0
    if principal_after_msat == principal_before_msat:
        principal = np.zeros_like(cash)
    else:
        principal = notes.floors(principal_after_msat)[0] - notes.floors(principal_before_msat)[0]
    return Shares(cash, principal, held_before, held_after)


def share_out_small(notes: Notes, cash_before_msat: int, cash_after_msat: int, principal_before_msat: int,
                     principal_after_msat: int, closing: bool, rotation: int) -> Shares:
    """share_out for a few notes: the same floors in Python integers, two arrays made at the end
    (array set-up costs more than the arithmetic for one note or ten)."""
    weights, total = notes._weights_list, notes.total
    before = [cash_before_msat * w // total for w in weights]
    products = [cash_after_msat * w for w in weights]
    after = [v // total for v in products]
    cash = [a - b for a, b in zip(after, before)]
    held_before = cash_before_msat - sum(before)
    held_after = cash_after_msat - sum(after)
    if closing and held_after:
        remainders = np.array([v % total for v in products], dtype=np.int64)
        for index in bonus_order(remainders, rotation)[:held_after].tolist():
            cash[index] += 1
        held_after = 0
    if principal_after_msat == principal_before_msat:
        principal = [0] * len(weights)
    else:
        principal = [principal_after_msat * w // total - principal_before_msat * w // total for w in weights]
    return Shares(np.array(cash, dtype=np.int64), np.array(principal, dtype=np.int64), held_before, held_after)


def remainder_payout(notes: Notes, cash_msat: int, rotation: int) -> list[int]:
    """At a write-off: 1 msat to each note that gets one of the held remainders of `cash_msat` (rule 3), as a
    list of 0 or 1 by note; they add up to what the escrow holds."""
    floors, remainders = notes.floors(cash_msat)
    held = cash_msat - int(floors.sum())
    bonus = [0] * len(notes.weights)
    for index in bonus_order(remainders, rotation)[:held].tolist():
        bonus[index] = 1
    return bonus


def bonus_order(remainders: NDArray[np.int64], rotation: int) -> NDArray[np.intp]:
    """Notes by largest remainder; among equal remainders, starting at position `rotation` (mod count)."""
    count = len(remainders)
    turn = (np.arange(count) - rotation % count) % count
    return np.lexsort((turn, -remainders))
