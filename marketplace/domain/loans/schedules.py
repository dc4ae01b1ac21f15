"""A loan's contract, and its installment schedule projected from the principal actually owed.

The schedule is never fixed once and for all: after every payment the
installments not yet due are recomputed from the real outstanding principal
and the interest accrued on it (accrual.py). The contract fixes what does
not change:

* annuity loans keep their installment amount — the exact annuity payment,
  rounded UP to the msat — and a prepayment shortens the term ("reduce
  term"); or, if the borrower chose so, keep their term and lower the
  installments (the level is recomputed from the principal still owed);
* equal-principal loans keep each installment's principal part (the
  principal split into equal parts, extra msats on the earliest) and a
  prepayment removes principal from the last installments; or, if chosen,
  spread what is left evenly over the remaining installments;
* each installment's interest is what accrues on the principal owed up to
  its due date, rounded DOWN to the msat;
* the last installment takes whatever is left, so the parts add up exactly.

Paid on its due dates, a loan costs exactly the schedule disclosed when it
was requested (build_schedule is the same projection made on day 0). Because
the payment is rounded up and interest down, the balance never runs behind
the exact annuity, so the last installment is never larger than the others.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import Enum
from fractions import Fraction
from functools import cached_property
from typing import NamedTuple

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.accrual import BPS_PER_UNIT, interest_between, unit_periods
from marketplace.domain.loans.calendar import Frequency, add_months, due_dates
from marketplace.domain.split import split
from marketplace.domain.messages import N_

__all__ = [
    "Contract", "Frequency", "MAX_INSTALLMENTS", "Method", "OpenInstallment", "Prepayment", "Schedule",
    "ScheduledInstallment", "add_months", "annuity_payment_msat", "build_schedule", "due_dates", "project",
]

MAX_INSTALLMENTS = 1000


class Method(str, Enum):
    ANNUITY = "annuity"
    EQUAL_PRINCIPAL = "equal_principal"


class Prepayment(str, Enum):
    """What paying more than is due does to the installments that follow."""

    REDUCE_TERM = "reduce_term"  # same installments, the loan ends sooner
    REDUCE_INSTALLMENT = "reduce_installment"  # same end date, smaller installments


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


def annuity_payment_msat(principal_msat: int, annual_rate_bps: int, count: int, periods_per_year: int) -> int:
    """The level payment P r / (1 - (1 + r)^-n), computed exactly, rounded UP to the msat.

    With r = bps / D and D = 10000 x periods, (1 + r)^n = A^n / D^n for
    A = D + bps, so the payment is P bps A^n / (D (A^n - D^n)): integers only.
    Without interest it is the principal over the count, rounded up.
    """
    if annual_rate_bps == 0:
        return -(-principal_msat // count)
    d = BPS_PER_UNIT * periods_per_year
    a_n: int = (d + annual_rate_bps) ** count
    d_n: int = d**count
    numerator = principal_msat * annual_rate_bps * a_n
    denominator = d * (a_n - d_n)
    return -(-numerator // denominator)


def level_from(principal_msat: int, first_interest_msat: int, annual_rate_bps: int, count: int,
               periods_per_year: int) -> int:
    """The level payment that repays `principal_msat` over `count` installments when the first of them
    carries `first_interest_msat` (its interest may cover more than one period: after an installment was
    settled ahead, the next one carries the interest of both periods), rounded UP to the msat.

    With a = the annuity factor over the count - 1 installments after the first, paying L leaves
    B + I - L to repay at a, so L = (B + I) a / (1 + a). A first interest of one period's worth
    gives the annuity payment itself.
    """
    owed = principal_msat + first_interest_msat
    if count <= 1:
        return owed
    rest = count - 1
    if annual_rate_bps == 0:
        return -(-owed // count)
    d = BPS_PER_UNIT * periods_per_year
    a_n: int = (d + annual_rate_bps) ** rest
    d_n: int = d**rest
    # a = bps A^n / (d (A^n - D^n)); L = owed a / (1 + a) = owed bps A^n / (d (A^n - D^n) + bps A^n).
    numerator = owed * annual_rate_bps * a_n
    denominator = d * (a_n - d_n) + annual_rate_bps * a_n
    return -(-numerator // denominator)


def _validate(principal_msat: int, annual_rate_bps: int, count: int) -> None:
    if count < 1:
        raise InvalidInput(N_("A loan needs at least one installment."))
    if count > MAX_INSTALLMENTS:
        raise InvalidInput(N_("A loan can have at most %(most)s installments.", most=format(MAX_INSTALLMENTS, ",")))
    if principal_msat <= 0:
        raise InvalidInput(N_("The loan amount must be more than 0 sat."))
    if annual_rate_bps < 0:
        raise InvalidInput(N_("The interest rate cannot be negative."))


@dataclass(frozen=True)
class Contract:
    """What the loan agreement fixes; everything else is computed from it and the payments."""

    principal_msat: int
    annual_rate_bps: int
    count: int
    frequency: Frequency
    method: Method
    start_date: date
    prepayment: Prepayment = Prepayment.REDUCE_TERM
    # Not part of the agreement but of the loan's fate: a written-off loan accrues nothing after this day.
    interest_stops_on: date | None = None

    def __post_init__(self) -> None:
        _validate(self.principal_msat, self.annual_rate_bps, self.count)
        object.__setattr__(self, "frequency", Frequency(self.frequency))
        object.__setattr__(self, "method", Method(self.method))
        object.__setattr__(self, "prepayment", Prepayment(self.prepayment))

    @property
    def periods_per_year(self) -> int:
        return self.frequency.periods_per_year

    @cached_property
    def due_dates(self) -> tuple[date, ...]:
        return tuple(due_dates(self.start_date, self.frequency, self.count))

    @cached_property
    def level_msat(self) -> int | None:
        """The installment amount of an annuity (None for equal principal)."""
        if self.method is not Method.ANNUITY:
            return None
        return annuity_payment_msat(self.principal_msat, self.annual_rate_bps, self.count, self.periods_per_year)

    @cached_property
    def principal_plan(self) -> tuple[int, ...]:
        """Equal-principal parts by installment number (extra msats on the earliest)."""
        return tuple(split(self.principal_msat, [1] * self.count))

    @cached_property
    def _positions(self) -> dict[date, Fraction]:
        return {}

    def position(self, day: date) -> Fraction:
        """Unit periods from the start to `day` (never negative)."""
        found = self._positions.get(day)
        if found is None:
            found = max(unit_periods(self.start_date, day, self.periods_per_year), Fraction(0))
            self._positions[day] = found
        return found

    @cached_property
    def scheduled_principal_left(self) -> tuple[int, ...]:
        """The principal the disclosed schedule leaves owed after each installment (index = number - 1).

        The yardstick of "ahead of the schedule": a borrower who owes no more principal than this after
        an installment's due date is never late on it (delinquency.py)."""
        disclosed = contract_schedule(replace(self, interest_stops_on=None))
        left, result = self.principal_msat, []
        for inst in disclosed.installments:
            left -= inst.principal_msat
            result.append(left)
        return tuple(result + [0] * (self.count - len(result)))

    def interest_msat(self, principal_msat: int, begin: date, end: date) -> int:
        """Interest accrued on `principal_msat` from `begin` to `end` (accrual.py), rounded down."""
        if self.interest_stops_on is not None and end > self.interest_stops_on:
            end = self.interest_stops_on
        return interest_between(principal_msat, self.annual_rate_bps, self.periods_per_year,
                                self.position(begin), self.position(end))


class OpenInstallment(NamedTuple):
    """An installment not due yet and not settled: its amounts are recomputed.

    `fixed_total_msat` is set once something was paid toward it: a partial
    payment counts toward this installment, so its total no longer moves;
    only its split between interest and principal does. (A tuple: one is
    made per open installment per repayment.)
    """

    number: int
    due_date: date
    principal_paid_msat: int = 0
    interest_paid_msat: int = 0
    fixed_total_msat: int | None = None


def project(contract: Contract, slots: Sequence[OpenInstallment], principal_msat: int,
            first_interest_msat: int, level_msat: int | None = None,
            new_level: bool = False) -> tuple[list[tuple[int, int]], int | None]:
    """The open installments recomputed: `principal_msat` still to place on them.

    `first_interest_msat` is the interest the first open installment carries
    (accrued up to its due date and not on any earlier installment); after
    it, each installment's interest accrues on the principal left after the
    one before. The result gives, for the first open installments in order,
    each one's whole principal and interest (paid parts included); those
    missing from it are no longer needed: the principal ran out before them
    (the term was reduced).

    Annuities keep `level_msat` (default: the contract's); with `new_level`
    (after a prepayment, when the borrower chose lower installments) the
    level is recomputed from what is owed over the installments left. The
    level used comes back with the installments.

    This runs for every repayment the listener credits, over every open
    installment, so the loop is kept to plain integer arithmetic.
    """
    if principal_msat < 0 or first_interest_msat < 0:
        raise InvalidInput(N_("A loan's balance cannot be negative."))
    level = contract.level_msat if level_msat is None else level_msat
    if not slots:
        if principal_msat or first_interest_msat:
            raise InvalidInput(N_("Principal or interest is left with no installment to carry it."))
        return [], level
    balance = principal_msat
    annuity = contract.method is Method.ANNUITY
    plan = contract.principal_plan
    # Equal parts of what is owed are stable from payment to payment; an annuity level only moves on a prepayment.
    recompute = contract.prepayment is Prepayment.REDUCE_INSTALLMENT and (new_level or not annuity)
    planned_parts: list[int] | None = None
    rate = contract.annual_rate_bps
    per_period = BPS_PER_UNIT * contract.periods_per_year
    last_index = len(slots) - 1
    result: list[tuple[int, int]] = []
    previous_number = -1
    carried = 0
    stops = contract.interest_stops_on is not None
    previous_due = slots[0][1]
    for index, (number, due, principal_paid, interest_paid, fixed) in enumerate(slots):
        if index == 0:
            interest = first_interest_msat
        elif stops:  # a written-off loan: nothing accrues past the write-off
            interest = carried + contract.interest_msat(balance, previous_due, due)
        else:
            # Due dates fall on whole periods, so between two of them interest is whole periods' worth.
            interest = carried + balance * rate * (number - previous_number) // per_period
        paid = principal_paid + interest_paid
        if balance == 0 and interest == 0 and paid == 0:
            return result, level  # nothing left to carry: the loan ends sooner
        if fixed is not None:
            target = fixed - paid
        elif annuity:
            if recompute:
                # Once per projection: the level that repays what is owed over the installments left.
                level = level_from(balance, interest, rate, len(slots) - index, contract.periods_per_year)
                recompute = False
            assert level is not None
            target = level - paid
        else:
            if recompute:
                planned_parts = [0] * index + split(balance, [1] * (len(slots) - index))
                recompute = False
            part = plan[number - 1] if planned_parts is None else planned_parts[index]
            target = (part if part < balance else balance) + interest
        if index == last_index or balance + interest <= target:
            # The last installment needed: everything that is left.
            result.append((principal_paid + balance, interest_paid + interest))
            return result, level
        previous_number, previous_due = number, due
        if fixed is not None and target < interest:
            # A part-paid installment keeps its total: the interest it cannot carry goes on the next one.
            result.append((principal_paid, interest_paid + target))
            carried = interest - target
            continue
        carried = 0
        principal = target - interest if target > interest else 0
        result.append((principal_paid + principal, interest_paid + interest))
        balance -= principal
    raise AssertionError("unreachable: the last slot always closes the projection")


def build_schedule(
    principal_msat: int,
    annual_rate_bps: int,
    count: int,
    frequency: Frequency,
    method: Method,
    start: date,
    prepayment: Prepayment = Prepayment.REDUCE_TERM,
) -> Schedule:
    """The schedule disclosed for a loan disbursed on `start`: what paying on every due date costs."""
    contract = Contract(principal_msat, annual_rate_bps, count, frequency, method, start, prepayment)
    return contract_schedule(contract)


def contract_schedule(contract: Contract) -> Schedule:
    slots = [OpenInstallment(number, due) for number, due in enumerate(contract.due_dates, start=1)]
    first_interest = contract.interest_msat(contract.principal_msat, contract.start_date, slots[0].due_date)
    parts, _ = project(contract, slots, contract.principal_msat, first_interest)
    return Schedule(
        principal_msat=contract.principal_msat,
        annual_rate_bps=contract.annual_rate_bps,
        frequency=contract.frequency,
        method=contract.method,
        installments=tuple(ScheduledInstallment(slot.number, slot.due_date, principal, interest)
                           for slot, (principal, interest) in zip(slots, parts)),
        start_date=contract.start_date,
        level_payment_msat=contract.level_msat,
    )
