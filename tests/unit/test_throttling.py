from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from marketplace.domain.throttling import describe_wait, retry_after

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
WINDOW = timedelta(minutes=15)


def test_under_the_limit_is_allowed() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert retry_after(failures, 5, WINDOW, NOW) is None


def test_at_the_limit_waits_for_the_oldest_to_age_out() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4, 10)]
    assert retry_after(failures, 5, WINDOW, NOW) == timedelta(minutes=5)


def test_over_the_limit_waits_until_fewer_than_limit_remain() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4, 10, 12)]
    # 12 and 10 must both leave: the one at -10 leaves in 5 minutes.
    assert retry_after(failures, 5, WINDOW, NOW) == timedelta(minutes=5)


def test_failures_outside_the_window_do_not_count() -> None:
    failures = [NOW - timedelta(minutes=20)] * 10
    assert retry_after(failures, 5, WINDOW, NOW) is None


@given(st.lists(st.integers(min_value=0, max_value=900), max_size=30), st.integers(min_value=1, max_value=10))
def test_waiting_the_answer_is_enough(ages_s: list[int], limit: int) -> None:
    failures = [NOW - timedelta(seconds=s) for s in ages_s]
    wait = retry_after(failures, limit, WINDOW, NOW)
    if wait is None:
        return
    assert wait > timedelta(0)
    assert retry_after(failures, limit, WINDOW, NOW + wait) is None


def test_describe_wait() -> None:
    assert describe_wait(timedelta(seconds=0.2)) == "in 1 second"
    assert describe_wait(timedelta(seconds=40)) == "in 40 seconds"
    assert describe_wait(timedelta(seconds=61)) == "in 2 minutes"
    assert describe_wait(timedelta(minutes=1)) == "in 1 minute"
