"""Sliding-window limits on failed attempts, as plain arithmetic on timestamps."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta


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
    """'in 14 minutes', 'in 1 minute', 'in 40 seconds': rounded up, never 'in 0'."""
    seconds = max(1, int(-(-wait.total_seconds() // 1)))
    if seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"
