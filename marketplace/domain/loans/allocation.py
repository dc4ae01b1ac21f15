"""How one repayment is applied to a loan.

The rules, in the words the loan pages show to borrowers and lenders:

1. Interest is simple interest on the principal still owed, for the time it
   is owed, at the loan's rate: each day costs its share of the period it
   falls in, so a whole period costs exactly the periodic rate, and unpaid
   interest never bears interest itself. How often the borrower pays does
   not change what the loan costs. Paid on the due dates, the loan costs
   exactly its schedule.
2. Overdue installments first (due on or before the day of the payment),
   oldest first: in each, the late fee, then the interest, then the principal.
3. Then the next installments, in order: each takes the interest accrued up
   to today, then principal. Paying exactly what is shown as next due
   settles that installment (early pays it less interest) and the following
   one becomes the next; more settles the ones after it the same way, so
   the day's payments count by their total, however they are split. Paid
   ahead, nothing more is due until the first installment not settled.
4. An installment paid ahead costs only the interest accrued to the day it
   is paid, so more of it repays principal, and the installments still to
   come are recomputed from what is left: they keep their amount and the
   loan ends sooner (or, if the borrower chose so, every later installment
   gets smaller). Interest on the repaid principal stops the same day.
5. A borrower who owes no more principal than the schedule leaves after the
   installments already due is never late and pays no late fee, even with
   something left unpaid. Late fees, like interest, are rounded down.
6. From the day a loan is written off it bears no more interest; what was
   owed then stays owed.
7. Paying the whole loan off costs what is overdue, the late fees, the
   interest accrued to today and the principal still owed — never more than
   what paying on the due dates would cost. Anything beyond that is
   returned to the borrower's balance; no msat is ever lost.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.delinquency import assess_late_fees, days_past_due
from marketplace.domain.loans.installments import InstallmentState as InstallmentState  # re-exported
from marketplace.domain.loans.schedules import Contract, OpenInstallment, Prepayment, contract_schedule, project
from marketplace.domain.messages import N_


@dataclass(frozen=True)
class Balance:
    """What the borrower owes besides late fees: principal, and interest.

    `accrued_on` is the day the principal last changed (or the start): interest accrues from it on the
    principal, and `interest_msat` is what had accrued by then less the interest paid since — negative
    when the borrower has paid interest accrued after that day. A payment that repays no principal
    therefore never restarts the accrual, so it never rounds anything (interest_to adds what accrued
    since, rounded down once): how often a borrower pays cannot change the interest.
    """

    principal_msat: int
    interest_msat: int
    accrued_on: date


@dataclass(frozen=True, eq=False)
class LoanState:
    contract: Contract
    balance: Balance
    # The installments as recorded; see `installments` for them as they stand.
    recorded: tuple[InstallmentState, ...]
    # The annuity installment now (moves only when a prepayment lowers it); None: the contract's.
    level_msat: int | None = None
    # Set by a part-payment of the installment being paid (apply_payment): the installments after it
    # are left as they were and projected from this date only when read. A run of small payments
    # then projects the rest of the loan once, not once per payment; the result is the same
    # (reproject recomputes every open installment from the balance, not from its old amounts).
    project_from: date | None = None

    @cached_property
    def installments(self) -> tuple[InstallmentState, ...]:
        if self.project_from is None:
            return self.recorded
        return reproject(self.contract, self.balance, self.recorded, self.project_from,
                         level_msat=self.level_msat).installments

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoanState):
            return NotImplemented
        return ((self.contract, self.balance, self.installments, self.level_msat)
                == (other.contract, other.balance, other.installments, other.level_msat))

    __hash__ = None  # type: ignore[assignment]

    def written_off(self, on: date) -> LoanState:
        """The loan written off on `on`: nothing accrues after that day (what is owed stays owed), and the
        installments still to come carry no interest beyond it."""
        stopped = LoanState(replace(self.contract, interest_stops_on=on), self.balance, self.installments,
                            self.level_msat)
        return refresh(stopped, on)

    def interest_to(self, as_of: date) -> int:
        """Interest owed on `as_of`: accrued before, plus accrued since (never negative time)."""
        b = self.balance
        if as_of <= b.accrued_on:
            return b.interest_msat
        return b.interest_msat + self.contract.interest_msat(b.principal_msat, b.accrued_on, as_of)

    @property
    def late_fees_unpaid_msat(self) -> int:
        # Late fees sit on installments already due, never on those waiting to be projected.
        return sum(i.late_fee_unpaid_msat for i in self.recorded)

    def payoff_msat(self, as_of: date) -> int:
        """What paying the whole loan off on `as_of` costs."""
        return self.late_fees_unpaid_msat + self.balance.principal_msat + self.interest_to(as_of)

    @property
    def is_repaid(self) -> bool:
        return (self.balance.principal_msat == 0 and self.balance.interest_msat == 0
                and self.late_fees_unpaid_msat == 0)

    def overdue(self, as_of: date) -> list[InstallmentState]:
        return [i for i in self.installments if i.due_date <= as_of and not i.is_paid]

    def next_due(self, as_of: date) -> tuple[date, int] | None:
        """The next payment to make: (date, amount), or None when nothing is owed.

        Overdue installments (late fees included) are due now, dated at the
        oldest one; once the last due date has passed, everything is. Else
        the first installment not yet settled, on its due date. Never more
        than the payoff.
        """
        payoff = self.payoff_msat(as_of)
        if payoff == 0:
            return None
        late = self.overdue(as_of)
        if late:
            if self.installments and self.installments[-1].due_date <= as_of:
                return late[0].due_date, payoff
            return late[0].due_date, min(payoff, sum(i.unpaid_msat for i in late))
        upcoming = next((i for i in self.installments if not i.is_paid), None)
        if upcoming is None:  # cannot happen while the balance is carried by installments
            return as_of, payoff
        return upcoming.due_date, min(payoff, upcoming.unpaid_msat)

    def behind(self, as_of: date) -> list[InstallmentState]:
        """The overdue installments the borrower is late on: those after which the disclosed schedule
        leaves less principal owed than the borrower owes now. A borrower at or ahead of the schedule's
        principal is never late (no late fee, no days past due), whatever is left unpaid."""
        owed = self.balance.principal_msat
        left = self.contract.scheduled_principal_left
        return [i for i in self.overdue(as_of) if owed > left[i.number - 1]]

    def days_past_due(self, as_of: date) -> int:
        """Days since the oldest installment the borrower is behind on fell due (0 if none)."""
        return days_past_due(self.behind(as_of), as_of)


@dataclass(frozen=True)
class Payment:
    """One repayment applied: where every msat went, and the loan after it."""

    received_msat: int
    applied_msat: int
    refund_msat: int
    late_fee_msat: int
    interest_msat: int
    principal_msat: int
    state: LoanState

    @property
    def income_msat(self) -> int:
        """What the lenders earn from it before the service fee: interest and late fees."""
        return self.late_fee_msat + self.interest_msat

    @property
    def fully_repaid(self) -> bool:
        return self.state.is_repaid


def validate(state: LoanState) -> None:
    """Refuse a state that breaks the bookkeeping rules (amounts, order, principal carried by installments)."""
    b = state.balance
    # Interest carried is negative only while principal is owed (it is interest paid as it accrued).
    if b.principal_msat < 0 or (b.interest_msat < 0 and b.principal_msat == 0):
        raise InvalidInput(N_("A loan's balance cannot be negative."))
    previous: InstallmentState | None = None
    for inst in state.installments:
        if previous is not None and (inst.number <= previous.number or inst.due_date < previous.due_date):
            raise InvalidInput(N_("Installments must be in order of number and due date."))
        amounts = (inst.principal_msat, inst.interest_msat, inst.late_fee_msat, inst.principal_paid_msat,
                   inst.interest_paid_msat, inst.late_fee_paid_msat)
        if min(amounts) < 0:
            raise InvalidInput(N_("Installment %(number)s has a negative amount.", number=inst.number))
        if (inst.principal_paid_msat > inst.principal_msat or inst.interest_paid_msat > inst.interest_msat
                or inst.late_fee_paid_msat > inst.late_fee_msat):
            raise InvalidInput(N_("Installment %(number)s is recorded as paid beyond what it owes.",
                                  number=inst.number))
        previous = inst
    if sum(i.principal_unpaid_msat for i in state.installments) != b.principal_msat:
        raise InvalidInput(N_("The installments do not carry exactly the principal still owed."))


def apply_payment(state: LoanState, received_msat: int, on: date) -> Payment:
    """Apply `received_msat`, paid on `on`, by the rules in the module docstring.

    Money beyond the installment being paid goes on to the next one, as a second payment the same day
    would: the result depends only on the day's total, not on how it was split, by construction
    (tests/properties/test_payment_invariance.py).
    """
    if received_msat < 0:
        raise InvalidInput(N_("A repayment cannot be negative."))
    # A payment cannot fall before the last one: the listener credits in
    # order, so an earlier date can only be a clock difference.
    on = max(on, state.balance.accrued_on)
    payment = _apply_step(state, received_msat, on)
    while payment.refund_msat and not payment.state.is_repaid:
        more = _apply_step(payment.state, payment.refund_msat, on)
        if more.applied_msat == 0:
            raise AssertionError("a loan not repaid took none of a payment")
        payment = Payment(received_msat, payment.applied_msat + more.applied_msat, more.refund_msat,
                          payment.late_fee_msat + more.late_fee_msat, payment.interest_msat + more.interest_msat,
                          payment.principal_msat + more.principal_msat, more.state)
    return payment


def _apply_step(state: LoanState, received_msat: int, on: date) -> Payment:
    """What is overdue, then the next installment; what is left comes back as `refund_msat` for the next step
    (apply_payment), or is a refund once the loan is repaid."""
    # Never below 0: only a payment dated before an earlier one (a clock difference) could make it so.
    interest_left = max(state.interest_to(on), 0)
    principal_left = state.balance.principal_msat
    left = received_msat
    late_fee = interest = principal = 0
    rows = list(state.recorded)
    first = _first_unpaid(rows)
    if state.project_from is not None and first < len(rows) and rows[first].due_date <= on:
        rows = list(state.installments)  # rows waiting to be projected are due: project them first
        first = _first_unpaid(rows)
    anything_due = settled_ahead = False
    current: int | None = None
    for index in range(first, len(rows)):
        inst = rows[index]
        _, due_date, principal_due, interest_due, fee_due, principal_paid, interest_paid, fee_paid, _ = inst
        if principal_due - principal_paid + interest_due - interest_paid + fee_due - fee_paid == 0:
            continue
        if due_date > on:
            current = index  # the next installment to pay (rows are in due-date order)
            break
        anything_due = True
        # Overdue: late fee, interest, principal.
        fee = min(left, inst.late_fee_msat - inst.late_fee_paid_msat)
        left -= fee
        i = min(left, inst.interest_msat - inst.interest_paid_msat, interest_left)
        left -= i
        p = min(left, inst.principal_msat - inst.principal_paid_msat, principal_left)
        left -= p
        interest_left -= i
        principal_left -= p
        late_fee += fee
        interest += i
        principal += p
        if fee or i or p:
            paid_p, paid_i, paid_fee = inst.principal_paid_msat + p, inst.interest_paid_msat + i, \
                inst.late_fee_paid_msat + fee
            done = (paid_p == inst.principal_msat and paid_i == inst.interest_msat
                    and paid_fee == inst.late_fee_msat)
            rows[index] = InstallmentState(inst.number, inst.due_date, inst.principal_msat, inst.interest_msat,
                                           inst.late_fee_msat, paid_p, paid_i, paid_fee, on if done else None)

    current_total: int | None = None  # the next installment's total before this payment reached it
    if current is not None and left:
        inst = rows[current]
        current_total = inst.due_msat
        owed = inst.due_msat - inst.principal_paid_msat - inst.interest_paid_msat
        if _first_unpaid(rows, current + 1) == len(rows):
            owed = interest_left + principal_left  # the last installment takes whatever is left
        credit = min(left, owed, interest_left + principal_left)
        i = min(credit, interest_left)
        p = credit - i
        left -= credit
        interest_left -= i
        principal_left -= p
        interest += i
        principal += p
        paid_i, paid_p = inst.interest_paid_msat + i, inst.principal_paid_msat + p
        if credit == owed or interest_left + principal_left == 0:
            # Settled: its parts are now what was actually paid.
            rows[current] = inst._replace(interest_msat=paid_i, principal_msat=paid_p,
                                          interest_paid_msat=paid_i, principal_paid_msat=paid_p, settled_on=on)
            settled_ahead = True
        else:
            # Part-paid: the total stays (passed on below); the split is recomputed.
            rows[current] = inst._replace(interest_msat=paid_i, principal_msat=max(inst.due_msat - paid_i, paid_p),
                                          interest_paid_msat=paid_i, principal_paid_msat=paid_p)

    # No installment after today to take it (all are due, or settled): accrued interest, then principal.
    i = p = 0
    if current is None:
        i = min(left, interest_left)
        left -= i
        interest_left -= i
        interest += i
        p = min(left, principal_left)
        left -= p
        principal_left -= p
        principal += p

    # Interest is only ever paid on an installment: what accrued beyond the ones paid belongs to the next.
    fixed_totals: dict[int, int | None] = _record_prepaid_interest(rows, i, on) if i else {}

    if principal_left == state.balance.principal_msat:
        balance = Balance(principal_left, state.balance.interest_msat - interest, state.balance.accrued_on)
    else:
        balance = Balance(principal_left, interest_left, on)
    if _rest_can_wait(rows, current, anything_due, p, principal_left):
        # Only the installment being paid moved; its total is fixed, so the rest can wait (LoanState.project_from).
        level = None if state.level_msat == state.contract.level_msat else state.level_msat
        after = LoanState(state.contract, balance, tuple(rows), level, project_from=on)
    else:
        if current is not None and current_total is not None:
            fixed_totals[rows[current].number] = current_total
        # Paid ahead, an installment costs less interest than projected and repays more principal: the
        # borrower's choice says whether that shortens the loan or lowers the installments still to come.
        after = reproject(state.contract, balance, rows, on, fixed_totals=fixed_totals,
                          level_msat=state.level_msat, new_level=p > 0 or settled_ahead)
    applied = received_msat - left
    return Payment(received_msat, applied, left, late_fee, interest, principal, after)


def _record_prepaid_interest(rows: list[InstallmentState], interest_msat: int, on: date) -> dict[int, int | None]:
    """Record interest paid ahead (beyond every installment the payment reached) as paid on an installment.

    It is interest accrued up to `on` in the period of the first installment still open, which the
    projection already counts in that installment's interest: record it there as paid. Its total still
    follows the projection (the payment was a prepayment, not a part-payment of it): the number returned
    maps to None in the fixed totals. After the last due date the last installment carries it.
    """
    index = _first_unpaid(rows)
    if index < len(rows) and rows[index].due_date > on:
        inst = rows[index]
        paid = inst.interest_paid_msat + interest_msat
        rows[index] = inst._replace(interest_msat=max(inst.interest_msat, paid), interest_paid_msat=paid)
        return {inst.number: None} if inst.principal_paid_msat + inst.interest_paid_msat == 0 else {}
    inst = rows[-1]
    rows[-1] = inst._replace(interest_msat=inst.interest_msat + interest_msat,
                             interest_paid_msat=inst.interest_paid_msat + interest_msat)
    return {}


def _rest_can_wait(rows: list[InstallmentState], current: int | None, anything_due: bool, prepaid: int,
                   principal_left: int) -> bool:
    """Whether only the installment being paid changed, in a way projecting the rest would not change.

    That is: nothing was due or prepaid, it was part-paid (so its total is fixed), and the
    projection keeps that total (it is not the last installment, and more principal is owed than
    is left to pay on it, so it is not the one that takes whatever is left).
    """
    if current is None or anything_due or prepaid:
        return False
    inst = rows[current]
    paid = inst.principal_paid_msat + inst.interest_paid_msat
    if inst.settled_on is not None or paid == 0 or principal_left <= inst.due_msat - paid:
        return False
    return _first_unpaid(rows, current + 1) < len(rows)


def _first_unpaid(rows: Sequence[InstallmentState], begin: int = 0) -> int:
    """The index of the first installment from `begin` with anything unpaid; len(rows) if none.

    On the hot path of every repayment, so the fields are read as a tuple, not through the properties."""
    for index in range(begin, len(rows)):
        _, _, principal, interest, fee, principal_paid, interest_paid, fee_paid, _ = rows[index]
        if principal - principal_paid + interest - interest_paid + fee - fee_paid:
            return index
    return len(rows)


def reproject(contract: Contract, balance: Balance, installments: Sequence[InstallmentState], as_of: date,
              fixed_totals: dict[int, int | None] | None = None, level_msat: int | None = None,
              new_level: bool = False) -> LoanState:
    """The loan seen from `as_of`, its open installments recomputed from `balance` (schedules.project).

    Installments due on or before `as_of`, and settled ones, keep their
    amounts. What is overdue keeps bearing interest until it is paid; that
    interest lands on the next open installment, or, after the last due
    date, on the last installment. The balance itself is not changed.

    An open installment with something paid keeps its total (a part-payment
    counts toward it) unless `fixed_totals` says otherwise: a total by
    installment number, or None for one whose total still follows the
    projection (only interest paid ahead on it).
    """
    as_of = max(as_of, balance.accrued_on)
    fixed = fixed_totals or {}
    kept: list[InstallmentState] = []
    slots: list[OpenInstallment] = []
    open_rows: list[InstallmentState] = []
    overdue_principal = overdue_interest = 0
    for inst in installments:
        number, due_date, principal, interest, late_fee, principal_paid, interest_paid, late_fee_paid, _ = inst
        principal_unpaid = principal - principal_paid
        interest_unpaid = interest - interest_paid
        settled = principal_unpaid + interest_unpaid + late_fee - late_fee_paid == 0
        if settled or due_date <= as_of:
            kept.append(inst)
            if not settled:
                overdue_principal += principal_unpaid
                overdue_interest += interest_unpaid
            continue
        paid = principal_paid + interest_paid
        # A plain tuple in OpenInstallment's order: one per open installment per repayment.
        slots.append((number, due_date, principal_paid, interest_paid,  # type: ignore[arg-type]
                      fixed.get(number, principal + interest if paid else None)))
        open_rows.append(inst)
    if new_level and contract.prepayment is Prepayment.REDUCE_INSTALLMENT and installments:
        # Lower installments keep the end date: spread over every due date left in the contract, including
        # any an earlier projection found no longer needed (so the result depends on the balance alone).
        for number in range(installments[-1].number + 1, contract.count + 1):
            due = contract.due_dates[number - 1]
            if due <= as_of:
                continue
            slots.append((number, due, 0, 0, None))  # type: ignore[arg-type]
            open_rows.append(InstallmentState(number, due, 0, 0, 0, 0, 0, 0))
    principal_open = balance.principal_msat - overdue_principal
    if principal_open < 0:
        raise InvalidInput(N_("The overdue installments carry more principal than is owed."))
    # The interest the open installments start with: what has accrued and is not on an overdue
    # installment, plus, up to the first open due date, interest on the principal not yet due. Overdue
    # principal is counted as paid today (the next payment goes to it first); from the same accrual
    # date, so paying on the due dates costs exactly the schedule however often this is recomputed.
    b = balance
    overdue_since = 0 if principal_open == b.principal_msat else (
        contract.interest_msat(b.principal_msat, b.accrued_on, as_of)
        - contract.interest_msat(principal_open, b.accrued_on, as_of))
    if slots:
        ahead = contract.interest_msat(principal_open, b.accrued_on, slots[0][1])
    else:
        ahead = contract.interest_msat(principal_open, b.accrued_on, as_of)
    interest_open = b.interest_msat + ahead + overdue_since - overdue_interest
    if interest_open < 0:
        # Cannot happen when every projection was made from the same balance; kept as a guard so a
        # listener batch never stops on it: overdue interest shrinks to what has accrued.
        kept, interest_open = _trim_interest(kept, -interest_open), 0
    if not slots:
        if principal_open:
            raise InvalidInput(N_("Principal is owed with no installment to carry it."))
        if interest_open:
            # After the last due date: the last installment carries the interest accrued since.
            last = kept[-1]
            kept[-1] = last._replace(interest_msat=last.interest_msat + interest_open)
        return LoanState(contract, balance, tuple(kept), level_msat)
    projected, level = project(contract, slots, principal_open, interest_open, level_msat, new_level)
    rows = kept + [
        inst if (principal, interest) == (inst[2], inst[3]) else _row(
            (inst[0], inst[1], principal, interest, inst[4], inst[5], inst[6], inst[7], inst[8]))
        for inst, (principal, interest) in zip(open_rows, projected)
    ]
    if kept and kept[-1].number > open_rows[0].number:  # settled rows after open ones (loans from before 0005)
        rows.sort(key=lambda i: i.number)
    return LoanState(contract, balance, tuple(rows), level if level != contract.level_msat else None)


def _row(values: tuple[object, ...]) -> InstallmentState:
    """An InstallmentState from its fields in order, without NamedTuple's Python-level constructor."""
    return tuple.__new__(InstallmentState, values)


def _trim_interest(kept: list[InstallmentState], excess: int) -> list[InstallmentState]:
    result = list(kept)
    for index in range(len(result) - 1, -1, -1):
        inst = result[index]
        if excess == 0:
            break
        if inst.is_paid:
            continue
        cut = min(excess, inst.interest_unpaid_msat)
        result[index] = inst._replace(interest_msat=inst.interest_msat - cut)
        excess -= cut
    if excess:
        raise InvalidInput(N_("The overdue installments carry more interest than has accrued."))
    return result


def start(contract: Contract) -> LoanState:
    """A loan on its disbursement day: the disclosed schedule, nothing paid."""
    balance = Balance(contract.principal_msat, 0, contract.start_date)
    rows = tuple(InstallmentState(i.number, i.due_date, i.principal_msat, i.interest_msat, 0, 0, 0, 0)
                 for i in contract_schedule(contract).installments)
    return LoanState(contract, balance, rows)


def assess(state: LoanState, fees: Sequence[tuple[int, int]], as_of: date) -> LoanState:
    """The loan with late fees recorded and its open installments brought up to `as_of`."""
    rows = assess_late_fees(state.installments, fees)
    return refresh(LoanState(state.contract, state.balance, tuple(rows), state.level_msat), as_of)


def refresh(state: LoanState, as_of: date) -> LoanState:
    """The open installments seen from `as_of`: those now due are frozen, interest since lands on the rest.

    Changes no money: the balance (and its accrual date) stay as they are.
    """
    if state.is_repaid:
        return state
    return reproject(state.contract, state.balance, state.installments, as_of, level_msat=state.level_msat)
