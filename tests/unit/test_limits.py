"""Lending limits: progressive caps and the refusals a borrower or lender reads."""
from __future__ import annotations

import pytest

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.limits import (
    BorrowerRecord,
    LendingLimits,
    borrower_max_msat,
    check_note,
    check_request,
    max_count_for,
)
from marketplace.domain.loans.schedules import Frequency

LIMITS = LendingLimits()
NEW = BorrowerRecord(repaid_on_time=0, repaid_late=0, defaults=0, open_loans=0)
SAT = 1000
RAISES = "repaying loans on time raises it."


def _record(on_time: int = 0, late: int = 0, defaults: int = 0, open_loans: int = 0) -> BorrowerRecord:
    return BorrowerRecord(on_time, late, defaults, open_loans)


def test_limit_grows_with_on_time_repayments_only() -> None:
    assert borrower_max_msat(NEW, LIMITS) == 100_000 * SAT
    assert borrower_max_msat(_record(on_time=1), LIMITS) == 150_000 * SAT
    assert borrower_max_msat(_record(on_time=2), LIMITS) == 225_000 * SAT
    assert borrower_max_msat(_record(on_time=3), LIMITS) == 337_500 * SAT
    assert borrower_max_msat(_record(on_time=4), LIMITS) == 506_250 * SAT  # 506,250 exactly
    assert borrower_max_msat(_record(on_time=5), LIMITS) == 759_375 * SAT
    assert borrower_max_msat(_record(on_time=6), LIMITS) == 1_139_062 * SAT  # 1,139,062.5 rounded down
    assert borrower_max_msat(_record(on_time=2, late=5), LIMITS) == 225_000 * SAT
    assert borrower_max_msat(_record(on_time=100), LIMITS) == 5_000_000 * SAT
    assert borrower_max_msat(_record(on_time=10**6), LIMITS) == 5_000_000 * SAT  # fast, capped
    assert borrower_max_msat(_record(on_time=9, defaults=1), LIMITS) == 0


def test_a_fine_request_passes() -> None:
    check_request(50_000 * SAT, 2400, 12, Frequency.MONTHLY, NEW, LIMITS)
    check_request(100_000 * SAT, 6000, 365, "daily", NEW, LIMITS)
    check_request(10_000 * SAT, 0, 1, Frequency.WEEKLY, NEW, LIMITS)


@pytest.mark.parametrize(
    ("amount_sat", "rate", "count", "frequency", "record", "message"),
    [
        (9_999, 1000, 12, "monthly", NEW, "The smallest loan is 10,000 sat."),
        (100_001, 1000, 12, "monthly", NEW, f"Your current limit is 100,000 sat; {RAISES}"),
        (200_000, 1000, 12, "monthly", _record(on_time=1), f"Your current limit is 150,000 sat; {RAISES}"),
        (5_000_001, 1000, 12, "monthly", _record(on_time=50), "The largest loan is 5,000,000 sat."),
        (50_000, 1000, 12, "monthly", _record(open_loans=1), "You already have an open loan; repay it before asking for another."),
        (50_000, 1000, 12, "monthly", _record(on_time=3, defaults=1), "Borrowing is frozen after a default."),
        (50_000, 6001, 12, "monthly", NEW, "The highest interest rate allowed is 60 % a year."),
        (50_000, -1, 12, "monthly", NEW, "The interest rate cannot be negative."),
        (50_000, 1000, 0, "monthly", NEW, "Choose between 1 and 60 monthly installments."),
        (50_000, 1000, 61, "monthly", NEW, "Choose between 1 and 60 monthly installments."),
        (50_000, 1000, 366, "daily", NEW, "Choose between 1 and 365 daily installments."),
        (50_000, 1000, 261, "weekly", NEW, "Choose between 1 and 260 weekly installments."),
        (50_000, 1000, 12, "yearly", NEW, "Choose daily, weekly or monthly installments."),
    ],
)
def test_request_refusals(
    amount_sat: int, rate: int, count: int, frequency: str, record: BorrowerRecord, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_request(amount_sat * SAT, rate, count, frequency, record, LIMITS)
    assert refused.value.message == message


def test_request_must_be_whole_sat_and_rate_message_shows_decimals() -> None:
    with pytest.raises(InvalidInput, match="whole number of sat"):
        check_request(50_000 * SAT + 1, 1000, 12, "monthly", NEW, LIMITS)
    with pytest.raises(InvalidInput) as refused:
        check_request(50_000 * SAT, 1251, 12, "monthly", NEW, LendingLimits(max_rate_bps=1250))
    assert refused.value.message == "The highest interest rate allowed is 12.50 % a year."


def test_term_cap() -> None:
    assert [max_count_for(f, LIMITS) for f in Frequency] == [365, 260, 60]
    assert max_count_for("monthly", LendingLimits(max_count=24)) == 24


def test_a_fine_note_passes() -> None:
    check_note(1_000 * SAT, 50_000 * SAT, 2_000 * SAT, LIMITS)
    # The last 400 sat of a request may be taken by a note smaller than the minimum.
    check_note(400 * SAT, 400 * SAT, 2_000 * SAT, LIMITS)


@pytest.mark.parametrize(
    ("amount_sat", "remaining_sat", "available_sat", "message"),
    [
        (999, 50_000, 10_000, "The smallest note is 1,000 sat."),
        (300, 400, 10_000, "The smallest note is 1,000 sat."),
        (0, 50_000, 10_000, "A note must be more than 0 sat."),
        (5_000, 4_000, 10_000, "Only 4,000 sat remain to fund this request; lend at most that."),
        (5_000, 0, 10_000, "This request is already fully funded."),
        (5_000, 50_000, 4_999, "You have 4,999 sat available; lend at most that."),
    ],
)
def test_note_refusals(amount_sat: int, remaining_sat: int, available_sat: int, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_note(amount_sat * SAT, remaining_sat * SAT, available_sat * SAT, LIMITS)
    assert refused.value.message == message


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(InvalidInput):
        LendingLimits(min_amount_sat=0)
    with pytest.raises(InvalidInput):
        LendingLimits(first_loan_max_sat=10_000_000)
    with pytest.raises(InvalidInput):
        LendingLimits(min_count=0)
