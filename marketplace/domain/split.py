"""Largest-remainder splitting: parts always add up to the whole, to the msat."""
from __future__ import annotations

from collections.abc import Sequence


def split(total_msat: int, weights: Sequence[int]) -> list[int]:
    """Split `total_msat` in proportion to non-negative integer `weights`.

    Each part is the floor of its exact share; the msats left over go one each
    to the largest remainders (ties to the earlier weight, so the result is
    deterministic). Every part is within 1 msat of its exact share.
    """
    if total_msat < 0:
        raise ValueError("total_msat must not be negative")
    if not weights:
        raise ValueError("cannot split among no weights")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    parts: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        part, remainder = divmod(total_msat * weight, weight_sum)
        parts.append(part)
        remainders.append(remainder)
    leftover = total_msat - sum(parts)
    if leftover:
        order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
        for i in order[:leftover]:
            parts[i] += 1
    return parts
