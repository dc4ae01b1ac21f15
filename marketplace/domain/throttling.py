"""Limits on failed attempts (sliding windows, growing delays), as plain arithmetic on timestamps."""
from __future__ import annotations

from marketplace.domain.messages import Message, ngettext

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal


def retry_after(
    failures: Sequence[datetime], limit: int, window: timedelta, now: datetime
) -> timedelta | None:
    """How long until another attempt is allowed, or None if one is allowed now.

    `failures` are the failure times inside the window. With `limit` or more of
    them, the next attempt waits until enough have aged out of the window that
    fewer than `limit` remain.
    """
    recent = sorted(at for at in failures if at > now - window)
    if len(recent) < limit:
        return None
    # After recent[len - limit] leaves the window, limit - 1 failures remain.
    frees_at = recent[len(recent) - limit] + window
    return max(frees_at - now, timedelta(seconds=1))


def describe_wait(wait: timedelta) -> str:
    """'in 14 minutes', 'in 1 minute', 'in 40 seconds': rounded up, never 'in 0' (English)."""
    return str(wait_message(wait))


def wait_message(wait: timedelta) -> Message:
    """As `describe_wait`, marked for translation."""
    seconds = max(1, int(-(-wait.total_seconds() // 1)))
    if seconds < 60:
        return ngettext("in %(num)d second", "in %(num)d seconds", seconds)
    minutes = -(-seconds // 60)
    return ngettext("in %(num)d minute", "in %(num)d minutes", minutes)


@dataclass(frozen=True)
class SignInPolicy:
    """How failed sign-ins slow down the one who fails, and nobody else.

    - A (account, address) pair has `free_failures` in the window; after that
      each attempt waits `delay` after the pair's last failure, doubling with
      every further failure, up to `delay_max`.
    - An address with `address_limit` failures in the window (any accounts)
      waits until enough of them age out.
    - An account with `account_alarm` failures in the window (from anywhere)
      is under attack: the addresses that failed on it lose their free
      failures, so a botnet gets one guess per address before the delays.

    An address without failures is never refused, so nobody can lock an
    account's owner out by failing on purpose.
    """

    window: timedelta
    free_failures: int
    delay: timedelta
    delay_max: timedelta
    address_limit: int
    account_alarm: int


@dataclass(frozen=True)
class Throttled:
    wait: timedelta
    by: Literal["pair", "address"]


def pair_wait(failures: Sequence[datetime], free: int, delay: timedelta, delay_max: timedelta,
              window: timedelta, now: datetime) -> timedelta | None:
    """How long this (account, address) pair must wait: the growing delay after its last failure."""
    recent = sorted(at for at in failures if at > now - window)
    over = len(recent) - free
    if not recent or over < 0:
        return None
    # In float seconds, capped: a long streak must not overflow timedelta.
    step_s = min(delay.total_seconds() * 2.0 ** min(over, 64), delay_max.total_seconds())
    ready = recent[-1] + timedelta(seconds=step_s)
    return ready - now if ready > now else None


def signin_wait(pair: Sequence[datetime], address: Sequence[datetime], account_failures: int,
                policy: SignInPolicy, now: datetime) -> Throttled | None:
    """Why (and how long) the next sign-in attempt must wait, or None when it may go ahead.

    When both limits apply, the longer wait is the one to tell: after it, neither holds.
    """
    by_address = retry_after(address, policy.address_limit, policy.window, now)
    free = 0 if account_failures >= policy.account_alarm else policy.free_failures
    by_pair = pair_wait(pair, free, policy.delay, policy.delay_max, policy.window, now)
    if by_address is None and by_pair is None:
        return None
    if by_pair is None or (by_address is not None and by_address >= by_pair):
        assert by_address is not None
        return Throttled(by_address, "address")
    return Throttled(max(by_pair, timedelta(seconds=1)), "pair")
