"""Installment frequencies and due dates."""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from enum import Enum

from marketplace.domain.errors import InvalidInput
from marketplace.domain.messages import N_


class Frequency(str, Enum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"

    @property
    def periods_per_year(self) -> int:
        return _PERIODS_PER_YEAR[self]


_PERIODS_PER_YEAR: dict[Frequency, int] = {
    Frequency.DAILY: 365,
    Frequency.WEEKLY: 52,
    Frequency.MONTHLY: 12,
}


def add_months(start: date, months: int) -> date:
    """`start` moved by whole months, its day clamped to the month's last day.

    Always counted from the original date, so Jan 31 gives Feb 28 (or 29) and
    then Mar 31: one short month does not pull every later date back.
    """
    month_index = start.year * 12 + (start.month - 1) + months
    year, month0 = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(start.day, last_day))


def due_dates(start: date, frequency: Frequency, count: int) -> list[date]:
    """The `count` due dates after `start` (the disbursement day), one period apart."""
    if count < 0:
        raise InvalidInput(N_("The number of installments cannot be negative."))
    frequency = Frequency(frequency)
    if frequency is Frequency.DAILY:
        return [start + timedelta(days=k) for k in range(1, count + 1)]
    if frequency is Frequency.WEEKLY:
        return [start + timedelta(weeks=k) for k in range(1, count + 1)]
    return [add_months(start, k) for k in range(1, count + 1)]
