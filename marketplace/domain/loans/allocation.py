"""How one repayment is applied to a loan and shared among its note holders.

The rules, in the words the loan pages show to borrowers and lenders:

1. Overdue installments first (due on or before today), oldest first; in each,
   the late fee, then the interest, then the principal.
2. Then the current installment (the first one due after today): its
   interest, then its principal. Paying early pays your next installment.
3. Anything left repays principal from the LAST installment backwards, so
   paying early shortens the loan. A later installment whose principal is
   fully repaid this way no longer carries interest: its interest is waived.
   Paying the loan off therefore costs what is overdue, plus the current
   installment's interest, plus all the principal still owed.
4. Anything left once everything is paid is returned to the borrower's
   balance (a refund); no msat is ever lost.
5. The platform's service fee is a share (in basis points, rounded down to the
   msat) of the amount applied to the loan, and is taken from the lenders'
   side: the borrower's debt goes down by the full amount applied. Late fees
   go to the lenders.
6. The lenders' part is shared among the notes in proportion to each note's
   principal still outstanding (largest remainder, to the msat, so the shares
   add up exactly). The principal repaid is shared the same way and lowers
   each note's principal; the rest of a lender's cash is income (interest and
   late fees net of the service fee).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from marketplace.domain.errors import InvalidInput
from marketplace.domain.split import split

BPS_PER_UNIT = 10_000


@dataclass(frozen=True)
class InstallmentState:
    number: int
    due_date: date
    principal_msat: int
    interest_msat: int
    late_fee_msat: int
    principal_paid_msat: int
    interest_paid_msat: int
    late_fee_paid_msat: int
    interest_waived: bool = False

    @property
    def principal_unpaid_msat(self) -> int:
        return self.principal_msat - self.principal_paid_msat

    @property
    def interest_unpaid_msat(self) -> int:
        # Waived interest is no longer owed; whatever was paid before stays paid.
        if self.interest_waived:
            return 0
        return self.interest_msat - self.interest_paid_msat

    @property
    def late_fee_unpaid_msat(self) -> int:
        return self.late_fee_msat - self.late_fee_paid_msat

    @property
    def unpaid_msat(self) -> int:
        return self.principal_unpaid_msat + self.interest_unpaid_msat + self.late_fee_unpaid_msat

    @property
    def is_paid(self) -> bool:
        return self.unpaid_msat == 0


@dataclass(frozen=True)
class InstallmentAllocation:
    number: int
    late_fee_msat: int
    interest_msat: int
    principal_msat: int
    waive_interest: bool

    @property
    def total_msat(self) -> int:
        return self.late_fee_msat + self.interest_msat + self.principal_msat


@dataclass(frozen=True)
class NoteState:
    note_id: int
    principal_outstanding_msat: int
    original_principal_msat: int


@dataclass(frozen=True)
class NoteShare:
    note_id: int
    cash_msat: int
    principal_msat: int
    income_msat: int


@dataclass(frozen=True)
class Allocation:
    received_msat: int
    applied_msat: int
    refund_msat: int
    service_fee_msat: int
    late_fee_msat: int
    interest_msat: int
    principal_msat: int
    per_installment: tuple[InstallmentAllocation, ...]
    shares: tuple[NoteShare, ...]
    fully_repaid: bool

    @property
    def lenders_msat(self) -> int:
        return self.applied_msat - self.service_fee_msat


def _validated(installments: Sequence[InstallmentState]) -> list[InstallmentState]:
    ordered = sorted(installments, key=lambda i: i.number)
    for previous, following in zip(ordered, ordered[1:]):
        if previous.number == following.number:
            raise InvalidInput(f"Installment {following.number} appears twice.")
        if following.due_date < previous.due_date:
            raise InvalidInput("Installments must fall due in the order of their numbers.")
    for inst in ordered:
        amounts = (
            inst.principal_msat,
            inst.interest_msat,
            inst.late_fee_msat,
            inst.principal_paid_msat,
            inst.interest_paid_msat,
            inst.late_fee_paid_msat,
        )
        if min(amounts) < 0:
            raise InvalidInput(f"Installment {inst.number} has a negative amount.")
        if (
            inst.principal_paid_msat > inst.principal_msat
            or inst.interest_paid_msat > inst.interest_msat
            or inst.late_fee_paid_msat > inst.late_fee_msat
        ):
            raise InvalidInput(f"Installment {inst.number} is recorded as paid beyond what it owes.")
    return ordered


def _current_index(ordered: Sequence[InstallmentState], as_of: date) -> int | None:
    """The current installment: the first one due after `as_of`, paid or not.

    Once it is paid, anything more before its due date prepays principal
    from the end (rule 3), so a payoff never costs more than it did the
    moment before a payment.
    """
    for index, inst in enumerate(ordered):
        if inst.due_date > as_of:
            return index
    return None


def overdue_msat(installments: Sequence[InstallmentState], as_of: date) -> int:
    """Everything due on or before `as_of` and not yet paid (late fees included)."""
    return sum(i.unpaid_msat for i in _validated(installments) if i.due_date <= as_of)


def outstanding_msat(installments: Sequence[InstallmentState], as_of: date) -> int:
    """What paying the whole loan off on `as_of` costs.

    Overdue installments in full, the current installment's interest and
    principal, and only the principal of later installments (their interest is
    waived once their principal is repaid).
    """
    ordered = _validated(installments)
    current = _current_index(ordered, as_of)
    total = 0
    for index, inst in enumerate(ordered):
        if current is None or index <= current:
            total += inst.unpaid_msat
        else:
            total += inst.principal_unpaid_msat
    return total


def next_due(installments: Sequence[InstallmentState], as_of: date) -> tuple[date, int] | None:
    """The next payment the borrower should make: (date, amount), or None if nothing is owed.

    When something is overdue (due on or before `as_of`), that is what to pay
    now: everything overdue, dated at the oldest overdue due date (the
    payment is already late). Otherwise the first installment due after
    `as_of` that is not fully paid yet, on its due date.
    """
    ordered = _validated(installments)
    overdue = [i for i in ordered if i.due_date <= as_of and not i.is_paid]
    if overdue:
        return overdue[0].due_date, sum(i.unpaid_msat for i in overdue)
    upcoming = next((i for i in ordered if i.due_date > as_of and not i.is_paid), None)
    if upcoming is None:
        return None
    return upcoming.due_date, upcoming.unpaid_msat


class _Parts:
    """Mutable per-installment tally while the waterfall runs."""

    __slots__ = ("late_fee", "interest", "principal", "waive")

    def __init__(self) -> None:
        self.late_fee = 0
        self.interest = 0
        self.principal = 0
        self.waive = False


def allocate(
    received_msat: int,
    installments: Sequence[InstallmentState],
    notes: Sequence[NoteState],
    service_fee_bps: int,
    as_of: date,
) -> Allocation:
    """Apply `received_msat` to the loan on `as_of` by the rules in the module docstring."""
    if received_msat < 0:
        raise InvalidInput("A repayment cannot be negative.")
    if not 0 <= service_fee_bps <= BPS_PER_UNIT:
        raise InvalidInput("The service fee must be between 0 and 10,000 basis points.")
    if not notes:
        raise InvalidInput("A loan without notes has nobody to repay.")
    if any(n.principal_outstanding_msat < 0 or n.original_principal_msat < 0 for n in notes):
        raise InvalidInput("A note's principal cannot be negative.")
    ordered = _validated(installments)
    current = _current_index(ordered, as_of)
    parts = [_Parts() for _ in ordered]
    left = received_msat

    def take(wanted: int) -> int:
        nonlocal left
        got = min(wanted, left)
        left -= got
        return got

    # 1. Overdue, oldest first: late fee, interest, principal.
    overdue_end = current if current is not None else len(ordered)
    for index in range(overdue_end):
        inst, part = ordered[index], parts[index]
        part.late_fee = take(inst.late_fee_unpaid_msat)
        part.interest = take(inst.interest_unpaid_msat)
        part.principal = take(inst.principal_unpaid_msat)

    if current is not None:
        # 2. The current installment: whatever is unpaid, interest before
        #    principal (a late fee cannot exist yet, but is paid first if it does).
        inst, part = ordered[current], parts[current]
        part.late_fee = take(inst.late_fee_unpaid_msat)
        part.interest = take(inst.interest_unpaid_msat)
        part.principal = take(inst.principal_unpaid_msat)

        # 3. Prepay principal from the last installment backwards.
        #    An installment is reached only once every later one has no
        #    principal left; reached, it has no principal left either, so its
        #    interest is no longer owed.
        for index in range(len(ordered) - 1, current, -1):
            inst, part = ordered[index], parts[index]
            part.principal = take(inst.principal_unpaid_msat)
            if part.principal < inst.principal_unpaid_msat:
                break
            if inst.interest_unpaid_msat > 0:
                part.waive = True

    # 4. The rest goes back to the borrower.
    refund = left
    applied = received_msat - refund

    per_installment = tuple(
        InstallmentAllocation(inst.number, part.late_fee, part.interest, part.principal, part.waive)
        for inst, part in zip(ordered, parts)
        if part.late_fee or part.interest or part.principal or part.waive
    )
    late_fee_total = sum(p.late_fee for p in parts)
    interest_total = sum(p.interest for p in parts)
    principal_total = sum(p.principal for p in parts)
    # Rounded down, so the fee never exceeds its stated share.
    service_fee = applied * service_fee_bps // BPS_PER_UNIT
    shares = _share(applied - service_fee, principal_total, notes)

    fully_repaid = all(
        inst.principal_unpaid_msat == part.principal
        and inst.late_fee_unpaid_msat == part.late_fee
        and (part.waive or inst.interest_unpaid_msat == part.interest)
        for inst, part in zip(ordered, parts)
    )
    return Allocation(
        received_msat=received_msat,
        applied_msat=applied,
        refund_msat=refund,
        service_fee_msat=service_fee,
        late_fee_msat=late_fee_total,
        interest_msat=interest_total,
        principal_msat=principal_total,
        per_installment=per_installment,
        shares=shares,
        fully_repaid=fully_repaid,
    )


def _share(lenders_msat: int, principal_msat: int, notes: Sequence[NoteState]) -> tuple[NoteShare, ...]:
    """The lenders' cash and the principal repaid, split by outstanding principal.

    No note's principal share can exceed its outstanding principal: with
    weights w_i summing to W >= principal, the exact share p w_i / W is at most
    w_i, and largest remainder gives each note its exact share rounded down or
    up, and w_i is an integer, so rounding up never passes it. (Checked below
    all the same.)

    The income (cash - principal) is split on its own with the same weights and
    added to the principal share, instead of splitting the cash total directly:
    largest remainder is not monotone in the total, so two independent splits
    could leave a note 1 msat of negative income on a payment whose income is
    positive. This way a note's income is negative only when the service fee
    exceeds the payment's whole income (then the cash itself is split, so no
    note receives negative cash).
    """
    outstanding = [n.principal_outstanding_msat for n in notes]
    weights = outstanding if sum(outstanding) > 0 else [n.original_principal_msat for n in notes]
    if sum(weights) == 0:
        raise InvalidInput("The loan's notes have no principal to share a repayment by.")
    if principal_msat > sum(outstanding):
        raise InvalidInput("The notes' outstanding principal is less than the principal being repaid.")
    principal_parts = split(principal_msat, weights)
    income_total = lenders_msat - principal_msat
    if income_total >= 0:
        income_parts = split(income_total, weights)
        cash_parts = [p + i for p, i in zip(principal_parts, income_parts)]
    else:
        cash_parts = split(lenders_msat, weights)
        income_parts = [c - p for c, p in zip(cash_parts, principal_parts)]
    shares = []
    for note, cash, principal, income in zip(notes, cash_parts, principal_parts, income_parts):
        assert principal <= note.principal_outstanding_msat, "a note's principal would go negative"
        shares.append(NoteShare(note.note_id, cash, principal, income))
    return tuple(shares)


def apply_allocation(
    installments: Sequence[InstallmentState],
    notes: Sequence[NoteState],
    allocation: Allocation,
) -> tuple[list[InstallmentState], list[NoteState]]:
    """The loan's installments (in number order) and notes after `allocation`; the inputs are not changed."""
    by_number = {a.number: a for a in allocation.per_installment}
    new_installments: list[InstallmentState] = []
    for inst in sorted(installments, key=lambda i: i.number):
        part = by_number.pop(inst.number, None)
        if part is None:
            new_installments.append(inst)
            continue
        updated = replace(
            inst,
            late_fee_paid_msat=inst.late_fee_paid_msat + part.late_fee_msat,
            interest_paid_msat=inst.interest_paid_msat + part.interest_msat,
            principal_paid_msat=inst.principal_paid_msat + part.principal_msat,
            interest_waived=inst.interest_waived or part.waive_interest,
        )
        if (
            updated.late_fee_paid_msat > updated.late_fee_msat
            or updated.interest_paid_msat > updated.interest_msat
            or updated.principal_paid_msat > updated.principal_msat
        ):
            raise InvalidInput(f"This repayment would overpay installment {inst.number}.")
        new_installments.append(updated)
    if by_number:
        raise InvalidInput("This repayment names installments the loan does not have.")

    by_note = {s.note_id: s for s in allocation.shares}
    if len(by_note) != len(allocation.shares) or set(by_note) != {n.note_id for n in notes}:
        raise InvalidInput("This repayment was shared among different notes than the loan's.")
    new_notes: list[NoteState] = []
    for note in notes:
        share = by_note[note.note_id]
        left = note.principal_outstanding_msat - share.principal_msat
        if left < 0:
            raise InvalidInput(f"This repayment would take note {note.note_id} below zero principal.")
        # A direct constructor: this runs once per note per repayment, replace() is 3x slower.
        new_notes.append(NoteState(note.note_id, left, note.original_principal_msat))
    return new_installments, new_notes


def installment_states(
    schedule_installments: Sequence[tuple[int, date, int, int]],
) -> list[InstallmentState]:
    """Fresh, unpaid states from (number, due date, principal, interest) rows."""
    return [
        InstallmentState(number, due, principal, interest, 0, 0, 0, 0)
        for number, due, principal, interest in schedule_installments
    ]
