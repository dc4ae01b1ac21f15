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
   the loan's escrow account and are paid out when the loan is repaid: by
   largest remainder, ties going round the notes in turn from loan to loan.
4. Principal repaid is attributed the same way (each note's repaid principal
   is its entitlement rounded down), so every note's principal is exactly
   repaid when the loan is. A note's income is its cash less its principal.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from marketplace.domain.errors import InvalidInput

BPS_PER_UNIT = 10_000


def service_fee_msat(income_before_msat: int, income_msat: int, fee_bps: int) -> int:
    """The fee on `income_msat` of new income, counted on the loan's cumulative income, rounded down."""
    if income_before_msat < 0 or income_msat < 0:
        raise InvalidInput("Income cannot be negative.")
    if not 0 <= fee_bps <= BPS_PER_UNIT:
        raise InvalidInput("The service fee must be between 0 and 10,000 basis points of income.")
    after = (income_before_msat + income_msat) * fee_bps // BPS_PER_UNIT
    return after - income_before_msat * fee_bps // BPS_PER_UNIT


@dataclass(frozen=True)
class Shares:
    cash_msat: tuple[int, ...]
    principal_msat: tuple[int, ...]
    # Msats left in escrow (not yet any one note's) before and after.
    held_before_msat: int
    held_after_msat: int

    @property
    def held_change_msat(self) -> int:
        return self.held_after_msat - self.held_before_msat


def _floors(total_msat: int, weights: Sequence[int], weight_sum: int) -> list[int]:
    return [total_msat * w // weight_sum for w in weights]


def share_out(weights: Sequence[int], cash_before_msat: int, cash_after_msat: int, principal_before_msat: int,
              principal_after_msat: int, *, closing: bool = False, rotation: int = 0) -> Shares:
    """Each note's cash and principal from the lenders' cumulative totals moving before -> after.

    `weights` are the notes' original principals. With `closing`, the held
    remainders are paid out too (rule 3), ties rotated by `rotation`.
    """
    if not weights or min(weights) < 0 or sum(weights) == 0:
        raise InvalidInput("A repayment needs notes with principal to share it by.")
    if not 0 <= cash_before_msat <= cash_after_msat or not 0 <= principal_before_msat <= principal_after_msat:
        raise InvalidInput("The lenders' totals can only grow.")
    if principal_after_msat > cash_after_msat:
        raise InvalidInput("The lenders cannot be repaid more principal than cash.")
    weight_sum = sum(weights)
    if principal_after_msat > weight_sum:
        raise InvalidInput("The notes cannot be repaid more principal than they lent.")
    before = _floors(cash_before_msat, weights, weight_sum)
    after = _floors(cash_after_msat, weights, weight_sum)
    cash = [a - b for a, b in zip(after, before)]
    held_before = cash_before_msat - sum(before)
    held_after = cash_after_msat - sum(after)
    if closing and held_after:
        for index in bonus_order(cash_after_msat, weights, weight_sum, rotation)[:held_after]:
            cash[index] += 1
        held_after = 0
    principal = [a - b for a, b in zip(_floors(principal_after_msat, weights, weight_sum),
                                       _floors(principal_before_msat, weights, weight_sum))]
    return Shares(tuple(cash), tuple(principal), held_before, held_after)


def bonus_order(total_msat: int, weights: Sequence[int], weight_sum: int, rotation: int) -> list[int]:
    """Notes by largest remainder of their exact share of `total_msat`; ties start at `rotation`."""
    count = len(weights)
    start = rotation % count
    return sorted(range(count), key=lambda i: (-(total_msat * weights[i] % weight_sum), (i - start) % count))
