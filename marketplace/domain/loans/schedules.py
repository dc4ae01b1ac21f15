"""Installment schedules: annuity and equal-principal amortization in integer msat.

Interest runs on the declining balance at the nominal periodic rate
``annual_rate_bps / 10000 / periods_per_year``. Every amount is an integer
number of millisatoshis; exact intermediate math uses integers and
``fractions.Fraction``, and each rounding is done once, where it is named:

* interest of an installment: balance x periodic rate, rounded half-up to the msat;
* annuity level payment: the exact annuity formula, rounded UP to the msat, so
  rounding never lengthens the loan; the last installment then takes whatever
  principal remains, so its payment can differ slightly from the others;
* equal principal: ``split(principal, [1] * count)`` (largest remainder), so the
  parts sum exactly; the extra msats go to the earliest installments.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

from marketplace.domain.errors import InvalidInput
from marketplace.domain.split import split

MAX_INSTALLMENTS = 1000
BPS_PER_UNIT = 10_000


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


class Method(str, Enum):
    ANNUITY = "annuity"
    EQUAL_PRINCIPAL = "equal_principal"


@dataclass(frozen=True)
class ScheduledInstallment:
    number: int
    due_date: date
    principal_msat: int
    interest_msat: int

    @property
    def total_msat(self) -> int:
        return self.principal_msat + self.interest_msat


@dataclass(frozen=True)
class Schedule:
    principal_msat: int
    annual_rate_bps: int
    frequency: Frequency
    method: Method
    installments: tuple[ScheduledInstallment, ...]
    # Optional so a schedule rebuilt from stored rows need not know them.
    start_date: date | None = None
    # The annuity's level payment (None for equal principal).
    level_payment_msat: int | None = None

    @property
    def total_interest_msat(self) -> int:
        return sum(i.interest_msat for i in self.installments)

    @property
    def total_msat(self) -> int:
        return sum(i.total_msat for i in self.installments)

    @property
    def count(self) -> int:
        return len(self.installments)


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
        raise InvalidInput("The number of installments cannot be negative.")
    frequency = Frequency(frequency)
    if frequency is Frequency.DAILY:
        return [start + timedelta(days=k) for k in range(1, count + 1)]
    if frequency is Frequency.WEEKLY:
        return [start + timedelta(weeks=k) for k in range(1, count + 1)]
    return [add_months(start, k) for k in range(1, count + 1)]


def periodic_interest_msat(balance_msat: int, annual_rate_bps: int, periods_per_year: int) -> int:
    """Interest of one period on `balance_msat`, rounded half-up to the msat.

    Done in integers: balance x bps / (10000 x periods), half-up being
    floor(x + 1/2) = (2 num + den) // (2 den) for non-negative x.
    """
    numerator = balance_msat * annual_rate_bps
    denominator = BPS_PER_UNIT * periods_per_year
    return (2 * numerator + denominator) // (2 * denominator)


def annuity_payment_msat(principal_msat: int, annual_rate_bps: int, count: int, periods_per_year: int) -> int:
    """The level payment P r / (1 - (1 + r)^-n), computed exactly, rounded UP to the msat.

    With r = bps / D and D = 10000 x periods, (1 + r)^n = A^n / D^n for
    A = D + bps, so the payment is P bps A^n / (D (A^n - D^n)): integers only.
    Rounding up (never down) means the borrower's rounding error is repaid
    early and the last installment comes out slightly smaller, never larger.
    """
    if annual_rate_bps == 0:
        return -(-principal_msat // count)
    d = BPS_PER_UNIT * periods_per_year
    a_n: int = (d + annual_rate_bps) ** count
    d_n: int = d**count
    numerator = principal_msat * annual_rate_bps * a_n
    denominator = d * (a_n - d_n)
    return -(-numerator // denominator)


def _validate(principal_msat: int, annual_rate_bps: int, count: int) -> None:
    if count < 1:
        raise InvalidInput("A loan needs at least one installment.")
    if count > MAX_INSTALLMENTS:
        raise InvalidInput(f"A loan can have at most {MAX_INSTALLMENTS:,} installments.")
    if principal_msat <= 0:
        raise InvalidInput("The loan amount must be more than 0 sat.")
    if annual_rate_bps < 0:
        raise InvalidInput("The interest rate cannot be negative.")


def build_schedule(
    principal_msat: int,
    annual_rate_bps: int,
    count: int,
    frequency: Frequency,
    method: Method,
    start: date,
) -> Schedule:
    """The full installment schedule of a loan disbursed on `start`."""
    _validate(principal_msat, annual_rate_bps, count)
    frequency = Frequency(frequency)
    method = Method(method)
    periods = frequency.periods_per_year
    dates = due_dates(start, frequency, count)

    level: int | None = None
    if method is Method.EQUAL_PRINCIPAL or annual_rate_bps == 0:
        # With no interest an annuity is just equal principal parts; split
        # keeps them within 1 msat of each other and exact in sum.
        principal_parts = split(principal_msat, [1] * count)
        if method is Method.ANNUITY:
            level = max(principal_parts)
    else:
        level = annuity_payment_msat(principal_msat, annual_rate_bps, count, periods)
        principal_parts = _annuity_principal_parts(principal_msat, annual_rate_bps, count, periods, level)

    installments: list[ScheduledInstallment] = []
    balance = principal_msat
    for number, (due, principal_part) in enumerate(zip(dates, principal_parts), start=1):
        interest = periodic_interest_msat(balance, annual_rate_bps, periods)
        installments.append(ScheduledInstallment(number, due, principal_part, interest))
        balance -= principal_part
    assert balance == 0, "principal parts must add up to the principal"
    return Schedule(
        principal_msat=principal_msat,
        annual_rate_bps=annual_rate_bps,
        frequency=frequency,
        method=method,
        installments=tuple(installments),
        start_date=start,
        level_payment_msat=level,
    )


def _annuity_principal_parts(
    principal_msat: int, annual_rate_bps: int, count: int, periods: int, payment_msat: int
) -> list[int]:
    parts: list[int] = []
    balance = principal_msat
    for number in range(1, count):
        interest = periodic_interest_msat(balance, annual_rate_bps, periods)
        remaining_after = count - number
        # Rounding the payment up repays a little early; over many periods at a
        # high rate that drift compounds and could empty the balance before the
        # last installment. Keeping 1 msat of principal per later installment
        # (when the loan is that large) means no installment ever comes out as
        # 0 msat; on realistic amounts this clamp never binds.
        reserve = remaining_after if balance > remaining_after else 0
        # An interest rounded up by half a msat can exceed a tiny payment;
        # principal is never negative.
        part = min(max(payment_msat - interest, 0), balance - reserve)
        parts.append(part)
        balance -= part
    # The last installment takes whatever principal remains, so the parts sum
    # exactly to the principal.
    parts.append(balance)
    return parts
