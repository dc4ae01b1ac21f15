"""The largest-remainder splitter: parts add up, none negative, each within 1 msat of its share."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.domain.split import split

weights_strategy = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=200).filter(
    lambda ws: sum(ws) > 0
)


@given(total=st.integers(min_value=0, max_value=10**15), weights=weights_strategy)
def test_parts_sum_to_total_and_stay_within_one_msat(total: int, weights: list[int]) -> None:
    parts = split(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights):
        assert part >= 0
        exact = Fraction(total * weight, weight_sum)
        assert abs(part - exact) < 1
        if weight == 0:
            assert part == 0


@given(total=st.integers(min_value=0, max_value=10**9), weights=weights_strategy)
def test_split_is_deterministic_and_order_fair(total: int, weights: list[int]) -> None:
    assert split(total, weights) == split(total, weights)
    # Equal weights get parts that differ by at most one msat.
    equal = split(total, [7] * len(weights))
    assert max(equal) - min(equal) <= 1


def test_leftover_goes_to_largest_remainders() -> None:
    assert split(10, [1, 1, 1]) == [4, 3, 3]
    assert split(100, [50, 30, 20]) == [50, 30, 20]
    assert split(1, [1, 2]) == [0, 1]
    assert split(5, [3, 0, 1]) == [4, 0, 1]


@pytest.mark.parametrize(
    "total, weights, message",
    [(-1, [1], "negative"), (5, [], "no weights"), (5, [0, 0], "all be zero"), (5, [1, -1], "negative")],
)
def test_bad_arguments_are_refused(total: int, weights: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split(total, weights)
