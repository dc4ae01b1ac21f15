"""What a borrower may ask for and what a lender may pledge.

Progressive lending: a first loan is small; each loan repaid on time raises
the cap by `growth_bps` (50 % by default), up to the marketplace's largest
loan; loans repaid late do not raise it; any default freezes borrowing. One
open loan at a time, so nobody borrows to repay a loan.
"""
from __future__ import annotations

from dataclasses import dataclass

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.schedules import Frequency
from marketplace.domain.money import MSAT_PER_SAT, format_msat
from marketplace.domain.messages import N_

BPS_PER_UNIT = 10_000


@dataclass(frozen=True)
class LendingLimits:
    min_amount_sat: int = 10_000
    max_amount_sat: int = 5_000_000
    max_rate_bps: int = 6000
    min_count: int = 1
    max_count: int = 365
    first_loan_max_sat: int = 100_000
    growth_bps: int = 5000
    min_note_sat: int = 1000
    # A term cap (about five years) on top of the count: 365 monthly
    # installments would be a 30-year loan, where an annuity's early principal
    # parts are fractions of a msat and rounding, not the rate, shapes the
    # schedule. Caps monthly at 60 and weekly at 260 installments.
    max_term_days: int = 1826

    def __post_init__(self) -> None:
        if not 0 < self.min_amount_sat <= self.first_loan_max_sat <= self.max_amount_sat:
            raise InvalidInput(N_("Limits must satisfy 0 < minimum loan <= first-loan cap <= largest loan."))
        if not 1 <= self.min_count <= self.max_count:
            raise InvalidInput(N_("Limits must allow at least one installment count."))
        if self.max_term_days < 1:
            raise InvalidInput(N_("Limits must allow a term of at least one day."))
        if self.max_rate_bps < 0 or self.growth_bps < 0 or self.min_note_sat <= 0:
            raise InvalidInput(N_("Rates, growth and the minimum note must not be negative."))


@dataclass(frozen=True)
class BorrowerRecord:
    repaid_on_time: int
    repaid_late: int
    defaults: int
    open_loans: int


def _percent(bps: int) -> str:
    whole, rest = divmod(bps, 100)
    return f"{whole}.{rest:02d} %".replace(".00 %", " %")


def max_count_for(frequency: Frequency | str, limits: LendingLimits) -> int:
    """The most installments allowed at `frequency`: the count limit or the term cap, whichever is lower."""
    periods_per_year = Frequency(frequency).periods_per_year
    # A period lasts 365 / periods_per_year days on average (30.4 for a month).
    return max(min(limits.max_count, limits.max_term_days * periods_per_year // 365), 1)


def borrower_max_msat(record: BorrowerRecord, limits: LendingLimits) -> int:
    """The largest loan this borrower may ask for now (0 once they have defaulted).

    first_loan_max x (1 + growth)^repaid_on_time, capped at the largest loan
    and rounded DOWN to the whole sat (loans are asked in sat; rounding down
    never lets the cap exceed its formula).
    """
    if record.defaults > 0:
        return 0
    cap_msat = limits.max_amount_sat * MSAT_PER_SAT
    # Integer math: multiply step by step and stop at the cap, so a long
    # record cannot grow a huge number.
    numerator = limits.first_loan_max_sat * MSAT_PER_SAT
    denominator = 1
    for _ in range(max(record.repaid_on_time, 0)):
        if numerator >= cap_msat * denominator:
            break
        numerator *= BPS_PER_UNIT + limits.growth_bps
        denominator *= BPS_PER_UNIT
    limit_msat = min(numerator // denominator, cap_msat)
    return limit_msat - limit_msat % MSAT_PER_SAT


def check_request(
    amount_msat: int,
    annual_rate_bps: int,
    count: int,
    frequency: Frequency | str,
    record: BorrowerRecord,
    limits: LendingLimits,
) -> None:
    """Refuse (InvalidInput) a loan request this borrower may not make; return None if it is fine."""
    if record.defaults > 0:
        raise InvalidInput(N_("Borrowing is frozen after a default."))
    if record.open_loans > 0:
        raise InvalidInput(N_("You already have an open loan; repay it before asking for another."))
    try:
        frequency = Frequency(frequency)
    except ValueError:
        raise InvalidInput(N_("Choose daily, weekly or monthly installments.")) from None
    if amount_msat % MSAT_PER_SAT:
        raise InvalidInput(N_("Ask for a whole number of sat."))
    if amount_msat < limits.min_amount_sat * MSAT_PER_SAT:
        raise InvalidInput(N_("The smallest loan is %(amount)s.",
                              amount=format_msat(limits.min_amount_sat * MSAT_PER_SAT)))
    limit_msat = borrower_max_msat(record, limits)
    if amount_msat > limit_msat:
        if limit_msat >= limits.max_amount_sat * MSAT_PER_SAT:
            raise InvalidInput(N_("The largest loan is %(amount)s.", amount=format_msat(limit_msat)))
        raise InvalidInput(N_("Your current limit is %(amount)s; repaying loans on time raises it.",
                              amount=format_msat(limit_msat)))
    if annual_rate_bps < 0:
        raise InvalidInput(N_("The interest rate cannot be negative."))
    if annual_rate_bps > limits.max_rate_bps:
        raise InvalidInput(N_("The highest interest rate allowed is %(rate)s a year.",
                              rate=_percent(limits.max_rate_bps)))
    most = max_count_for(frequency, limits)
    if not limits.min_count <= count <= most:
        said = {Frequency.DAILY: N_("Choose between %(least)s and %(most)s daily installments.", least=limits.min_count,
                                    most=most),
                Frequency.WEEKLY: N_("Choose between %(least)s and %(most)s weekly installments.",
                                     least=limits.min_count, most=most),
                Frequency.MONTHLY: N_("Choose between %(least)s and %(most)s monthly installments.",
                                      least=limits.min_count, most=most)}
        raise InvalidInput(said[frequency])


def check_note(amount_msat: int, remaining_msat: int, available_msat: int, limits: LendingLimits) -> None:
    """Refuse (InvalidInput) a note a lender may not pledge; return None if it is fine."""
    min_note_msat = limits.min_note_sat * MSAT_PER_SAT
    if remaining_msat <= 0:
        raise InvalidInput(N_("This request is already fully funded."))
    if amount_msat <= 0:
        raise InvalidInput(N_("A note must be more than 0 sat."))
    if amount_msat > remaining_msat:
        raise InvalidInput(N_("Only %(amount)s remain to fund this request; lend at most that.",
                              amount=format_msat(remaining_msat)))
    # The last sliver of a request may be smaller than a note: whoever fills
    # it exactly may lend it, or the request could never be fully funded.
    if amount_msat < min_note_msat and amount_msat != remaining_msat:
        raise InvalidInput(N_("The smallest note is %(amount)s.", amount=format_msat(min_note_msat)))
    if amount_msat > available_msat:
        raise InvalidInput(N_("You have %(amount)s available; lend at most that.",
                              amount=format_msat(max(available_msat, 0))))
