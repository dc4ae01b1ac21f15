"""Days past due, the loan's state, late fees and portfolio at risk.

States, by the days since the oldest installment still unpaid fell due
(days past due, "dpd"), with the policy's numbers (defaults in brackets). An
installment counts only while the borrower is behind the disclosed schedule's
principal (allocation.LoanState.behind): a borrower who owes no more principal
than the schedule leaves after it is never late on it.

* current: nothing overdue (dpd 0; an installment due today is not late yet);
* grace: 1 to `grace_days` [15] days past due; no fee;
* late: more than `grace_days`; a late fee, if the policy sets one, is assessed
  once per installment as it leaves grace, and goes to the lenders;
* defaulted: more than `default_after_days` [60]; catching up does not make
  the loan current again by itself, only repaying it in full (-> repaid);
* written off: more than `write_off_after_days` [120]; final in the books;
  interest stops accruing on the day of the write-off (what was owed then
  stays owed, and recoveries are credited to the note holders);
* repaid: everything paid; final.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.installments import InstallmentState
from marketplace.domain.messages import N_

BPS_PER_UNIT = 10_000


class LoanState(str, Enum):
    CURRENT = "current"
    GRACE = "grace"
    LATE = "late"
    DEFAULTED = "defaulted"
    WRITTEN_OFF = "written_off"
    REPAID = "repaid"


TERMINAL_STATES = frozenset({LoanState.WRITTEN_OFF, LoanState.REPAID})


@dataclass(frozen=True)
class DelinquencyPolicy:
    grace_days: int = 15
    default_after_days: int = 60
    write_off_after_days: int = 120
    # Of the installment's unpaid principal + interest when it leaves grace.
    late_fee_bps: int = 0
    late_fee_flat_msat: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.grace_days < self.default_after_days < self.write_off_after_days:
            raise InvalidInput(N_(
                "The grace period must end before default, and default must come before write-off.")
            )
        if self.late_fee_bps < 0 or self.late_fee_flat_msat < 0:
            raise InvalidInput(N_("A late fee cannot be negative."))


def days_past_due(installments: Sequence[InstallmentState], as_of: date) -> int:
    """Days since the oldest installment that is due and not fully paid fell due (0 if none)."""
    oldest = min((i.due_date for i in installments if i.due_date <= as_of and not i.is_paid), default=None)
    if oldest is None:
        return 0
    return (as_of - oldest).days


def _state_by_days(dpd: int, policy: DelinquencyPolicy) -> LoanState:
    if dpd > policy.write_off_after_days:
        return LoanState.WRITTEN_OFF
    if dpd > policy.default_after_days:
        return LoanState.DEFAULTED
    if dpd > policy.grace_days:
        return LoanState.LATE
    if dpd > 0:
        return LoanState.GRACE
    return LoanState.CURRENT


def loan_state(dpd: int, policy: DelinquencyPolicy, previous: LoanState) -> LoanState:
    """The state of a loan not repaid, `dpd` days past due (LoanState.days_past_due), given its state before.

    Idempotent: calling it again with its own answer as `previous` gives the
    same answer, so the daily job can run any number of times.
    """
    previous = LoanState(previous)
    if previous in TERMINAL_STATES:
        return previous
    by_days = _state_by_days(dpd, policy)
    # A default is a fact about the loan's history: catching up on the arrears
    # does not undo it (only full repayment, handled above, or write-off).
    if previous is LoanState.DEFAULTED and by_days is not LoanState.WRITTEN_OFF:
        return LoanState.DEFAULTED
    return by_days


def late_fee_for(installment: InstallmentState, policy: DelinquencyPolicy) -> int:
    """The fee for one installment leaving grace: bps of what it still owes plus the flat fee, rounded DOWN
    (like interest: no rounding is ever charged against the borrower)."""
    base = installment.principal_unpaid_msat + installment.interest_unpaid_msat
    return base * policy.late_fee_bps // BPS_PER_UNIT + policy.late_fee_flat_msat


def late_fees_due(
    installments: Sequence[InstallmentState], as_of: date, policy: DelinquencyPolicy
) -> list[tuple[int, int]]:
    """(installment number, fee) for each unpaid installment past grace with no fee assessed yet.

    Pass the installments the borrower is behind on (LoanState.behind): one at or ahead of the
    schedule's principal is never charged.

    An installment is assessed at most once: after its fee is recorded
    (late_fee_msat > 0) it is never listed again, so the call is idempotent. A
    zero fee is never listed (it would be listed again forever).
    """
    due: list[tuple[int, int]] = []
    for inst in sorted(installments, key=lambda i: i.number):
        if inst.is_paid or inst.late_fee_msat > 0:
            continue
        if (as_of - inst.due_date).days <= policy.grace_days:
            continue
        fee = late_fee_for(inst, policy)
        if fee > 0:
            due.append((inst.number, fee))
    return due


def assess_late_fees(
    installments: Sequence[InstallmentState], fees: Sequence[tuple[int, int]]
) -> list[InstallmentState]:
    """The installments with `fees` (from late_fees_due) recorded."""
    by_number = dict(fees)
    result = []
    for inst in installments:
        fee = by_number.get(inst.number)
        if fee is None:
            result.append(inst)
        else:
            if inst.late_fee_msat > 0:
                raise InvalidInput(N_("Installment %(number)s already has a late fee.", number=inst.number))
            result.append(inst._replace(late_fee_msat=fee))
    return result


@dataclass(frozen=True)
class LoanRisk:
    loan_id: int
    outstanding_principal_msat: int
    days_past_due: int


def portfolio_at_risk(loans: Sequence[LoanRisk], threshold_days: int) -> tuple[int, int]:
    """(principal at risk, whole outstanding principal) for PAR`threshold_days`.

    At risk is the WHOLE outstanding principal of every loan more than
    `threshold_days` past due, not just its overdue part: a loan that has
    stopped paying puts all of its principal at risk. Pass the loans still on
    the books (not repaid, not written off).
    """
    if threshold_days < 0:
        raise InvalidInput(N_("The threshold cannot be negative."))
    at_risk = sum(loan.outstanding_principal_msat for loan in loans if loan.days_past_due > threshold_days)
    total = sum(loan.outstanding_principal_msat for loan in loans)
    return at_risk, total


def ratio_bps(part_msat: int, whole_msat: int) -> int:
    """part / whole in basis points, rounded half-up; 0 when the whole is 0."""
    if whole_msat <= 0:
        return 0
    return (2 * part_msat * BPS_PER_UNIT + whole_msat) // (2 * whole_msat)


def par_bps(loans: Sequence[LoanRisk], threshold_days: int) -> int:
    """PAR`threshold_days` in basis points, rounded half-up (0 for an empty portfolio)."""
    at_risk, total = portfolio_at_risk(loans, threshold_days)
    return ratio_bps(at_risk, total)
