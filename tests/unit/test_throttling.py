from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, strategies as st

from marketplace.domain.throttling import SignInPolicy, describe_wait, retry_after, signin_wait

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


POLICY = SignInPolicy(window=WINDOW, free_failures=3, delay=timedelta(seconds=2), delay_max=WINDOW,
                      address_limit=20, account_alarm=10)
ages = st.lists(st.integers(min_value=0, max_value=1200), max_size=40)


@given(st.integers(min_value=0, max_value=10_000))
def test_an_address_that_has_not_been_failing_is_never_refused(account_failures: int) -> None:
    assert signin_wait([], [], account_failures, POLICY, NOW) is None


def test_delays_double_after_the_free_failures_up_to_the_window() -> None:
    def wait_after(n: int) -> timedelta | None:
        failures = [NOW - timedelta(milliseconds=n - i) for i in range(n)]  # the last one just now
        found = signin_wait(failures, failures, 0, POLICY, NOW)
        return None if found is None else found.wait
    assert [wait_after(n) for n in range(3)] == [None, None, None]
    waits = [wait_after(n) for n in range(3, 19)]
    assert all(w is not None for w in waits)
    seconds = [round(w.total_seconds()) for w in waits if w is not None]
    assert seconds[:4] == [2, 4, 8, 16] and seconds[-1] == 900 and seconds == sorted(seconds)


def test_an_account_on_alert_leaves_failing_addresses_no_free_tries() -> None:
    once = [NOW - timedelta(seconds=1)]
    assert signin_wait(once, once, 9, POLICY, NOW) is None
    found = signin_wait(once, once, 10, POLICY, NOW)
    assert found is not None and found.by == "pair"


def test_the_address_cap_comes_first() -> None:
    elsewhere = [NOW - timedelta(minutes=1)] * 20
    found = signin_wait([], elsewhere, 0, POLICY, NOW)
    assert found is not None and found.by == "address" and found.wait == timedelta(minutes=14)


@given(ages, ages, st.integers(min_value=0, max_value=30))
def test_waiting_the_answer_is_enough_for_sign_in(pair_ages: list[int], other_ages: list[int],
                                                  account: int) -> None:
    pair = [NOW - timedelta(seconds=s) for s in pair_ages]
    address = pair + [NOW - timedelta(seconds=s) for s in other_ages]
    found = signin_wait(pair, address, account, POLICY, NOW)
    if found is None:
        return
    assert timedelta(0) < found.wait <= WINDOW
    assert signin_wait(pair, address, account, POLICY, NOW + found.wait) is None
