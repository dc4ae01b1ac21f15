"""Every note its exact share over the loan's life, and a fee that never touches principal.

The invariants, as a lender would sign them:

* After every repayment my note's cumulative cash is within 1 msat of its
  exact pro-rata part (by the principal I lent) of all the lenders have
  received; it never goes down; and being the first or the last note of a
  loan gains me nothing.
* When the loan is repaid, my note's principal is repaid exactly.
* The service fee comes out of income only: a loan repaid in full returns at
  least every msat lent, whatever the pattern of repayments.
"""
from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.domain.loans.allocation import apply_payment, start
from marketplace.domain.loans.schedules import Contract, Frequency, Method
from marketplace.domain.loans.sharing import (
    Notes,
    service_fee_msat,
    share_out,
    share_out_arrays,
    share_out_small,
)
from marketplace.domain.split import split
from tests.properties.loan_patterns import contracts, on_time_run

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def note_weights(draw: st.DrawFn) -> list[int]:
    count = draw(st.integers(1, 500))
    principal = draw(st.integers(count * 1000, 5 * 10**9))
    shape = draw(st.lists(st.integers(0, 10**6), min_size=count, max_size=count))
    if sum(shape) == 0:
        shape = [1] * count
    return [1000 + part for part in split(principal - 1000 * count, shape)]


def _steps(draw: st.DrawFn, principal: int) -> list[tuple[int, int]]:
    """(cash, principal) increments: principal ends exactly repaid, cash covers principal plus income."""
    parts = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
    if sum(parts) == 0:
        parts[-1] = 1
    principal_parts = split(principal, parts)
    return [(p + draw(st.integers(0, max(p // 5, 3))), p) for p in principal_parts]


@EXAMPLES
@given(st.data(), note_weights(), st.integers(0, 10**6))
def test_each_note_holds_its_exact_share_to_within_a_msat(data: st.DataObject, weights: list[int],
                                                          rotation: int) -> None:
    total_weight = sum(weights)
    steps = _steps(data.draw, total_weight)
    notes = Notes.of(weights)
    cash_total = principal_total = held = 0
    cash = [0] * len(weights)
    principal = [0] * len(weights)
    for index, (cash_step, principal_step) in enumerate(steps):
        closing = index == len(steps) - 1
        shares = share_out(notes, cash_total, cash_total + cash_step, principal_total,
                           principal_total + principal_step, closing=closing, rotation=rotation)
        assert min(shares.cash_msat) >= 0 and min(shares.principal_msat) >= 0
        assert int(shares.cash_msat.sum()) + shares.held_change_msat == cash_step
        assert shares.held_before_msat == held
        held = shares.held_after_msat
        assert 0 <= held < len(weights)
        cash_total += cash_step
        principal_total += principal_step
        for i, (c, p) in enumerate(zip(shares.cash_msat.tolist(), shares.principal_msat.tolist())):
            cash[i] += c
            principal[i] += p
        assert sum(principal) <= principal_total
        for i, w in enumerate(weights):
            # |cash - exact| < 1 msat, with exact = cash_total * w / total_weight, in integers.
            off = cash[i] * total_weight - cash_total * w
            assert -total_weight < off < total_weight, (i, cash[i], cash_total * w / total_weight)
            assert closing or off <= 0  # rounded down until the loan closes
    assert held == 0 and sum(cash) == cash_total
    assert principal == weights  # every note's principal back, exactly


def test_no_position_gains_ties_go_round_the_notes() -> None:
    """200 equal notes: over 200 loans (ids 1..200) with the same leftover, each position gets it equally often."""
    notes = Notes.of([1_000_000] * 200)
    bonuses = [0] * 200
    for loan_id in range(1, 201):
        shares = share_out(notes, 0, 200 * 1_000_000 + 37, 0, 200 * 1_000_000, closing=True, rotation=loan_id)
        for i, c in enumerate(shares.cash_msat.tolist()):
            bonuses[i] += c - 1_000_000
    assert bonuses == [37] * 200


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 300), st.integers(1, 10**9), st.integers(1, 40))
def test_first_and_last_notes_fare_the_same_while_the_loan_runs(count: int, amount: int, payments: int) -> None:
    notes = Notes.of([10_000] * count)
    cash_total = 0
    first = last = 0
    for _ in range(payments):
        shares = share_out(notes, cash_total, cash_total + amount, 0, 0)
        cash_total += amount
        first += int(shares.cash_msat[0])
        last += int(shares.cash_msat[-1])
    assert first == last


def test_issue_example_hundred_equal_notes_get_equal_cash() -> None:
    """100 notes of 1,000 sat on the 100,000-sat, 60 %, 2-month loan; then 2,561,126 msat on 2026-03-01.

    The old rules split by outstanding principal, one payment at a time: once
    that principal was tiny, note 1 received 16,904 msat and note 100 33,807.
    Now every note receives the same to within a msat.
    """
    contract = Contract(100_000_000, 6000, 2, Frequency.MONTHLY, Method.ANNUITY, date(2026, 1, 1))
    notes = Notes.of([1_000_000] * 100)
    state = start(contract)
    cash_total = principal_total = income_total = 0
    received = [0] * 100
    for amount, on in ((100_000_000 - 150, date(2026, 1, 1)), (2_561_126, date(2026, 3, 1))):
        payment = apply_payment(state, amount, on)
        fee = service_fee_msat(income_total, payment.income_msat, 1000)
        lenders = payment.applied_msat - fee
        shares = share_out(notes, cash_total, cash_total + lenders, principal_total,
                           principal_total + payment.principal_msat, closing=payment.fully_repaid, rotation=7)
        cash_total += lenders
        principal_total += payment.principal_msat
        income_total += payment.income_msat
        received = [r + c for r, c in zip(received, shares.cash_msat.tolist())]
        state = payment.state
    assert state.is_repaid
    assert max(received) - min(received) <= 1
    assert sum(received) == cash_total
    assert min(received) >= 1_000_000  # every note got its principal back


@EXAMPLES
@given(st.data(), contracts(max_count=12), st.integers(0, 10_000))
def test_a_loan_repaid_in_full_returns_every_msat_lent(data: st.DataObject, contract: Contract, fee_bps: int) -> None:
    run = on_time_run(data, contract)
    income = 0
    lenders = 0
    for _, payment in run.payments:
        fee = service_fee_msat(income, payment.income_msat, fee_bps)
        assert 0 <= fee <= payment.income_msat
        income += payment.income_msat
        lenders += payment.applied_msat - fee
    assert lenders >= contract.principal_msat
    assert income * fee_bps // 10_000 == income - (lenders - contract.principal_msat)


def test_repaid_the_same_day_the_lenders_get_their_principal_back_exactly() -> None:
    """The old fee took 1 % of principal: 100,000 sat at 36.5 % repaid the same day returned 99,694.904 sat."""
    contract = Contract(100_000_000, 3650, 12, Frequency.MONTHLY, Method.ANNUITY, date(2026, 4, 1))
    payment = apply_payment(start(contract), 100_000_000, date(2026, 4, 1))
    fee = service_fee_msat(0, payment.income_msat, 1000)
    assert payment.fully_repaid and fee == 0
    assert payment.applied_msat - fee == 100_000_000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5 * 10**9), min_size=1, max_size=40).filter(lambda w: sum(w) > 0),
       st.one_of(st.integers(0, 10**13), st.integers(0, 2**61)))
def test_the_array_floors_are_exact(weights: list[int], amount: int) -> None:
    """The 64-bit array arithmetic (amount x weight can pass 2^64) against Python's exact integers."""
    total = sum(weights)
    floors, remainders = Notes.of(weights).floors(amount)
    assert floors.tolist() == [amount * w // total for w in weights]
    assert remainders.tolist() == [amount * w % total for w in weights]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5 * 10**9), min_size=1, max_size=40).filter(lambda w: sum(w) > 0), st.data(),
       st.booleans(), st.integers(0, 1000))
def test_the_share_out_is_the_same_for_few_notes_and_many(weights: list[int], data: st.DataObject, closing: bool,
                                                          rotation: int) -> None:
    """A few notes take a Python-integer path, many the array path: both give every note the same msat."""
    total = sum(weights)
    cash_after = data.draw(st.integers(0, 3 * total))
    cash_before = data.draw(st.integers(0, cash_after))
    principal_after = data.draw(st.integers(0, min(total, cash_after)))
    principal_before = data.draw(st.integers(0, principal_after))
    args = (cash_before, cash_after, principal_before, principal_after)
    notes = Notes.of(weights)
    few = share_out_small(notes, *args, closing, rotation)
    many = share_out_arrays(notes, *args, closing, rotation)
    assert few.cash_msat.tolist() == many.cash_msat.tolist()
    assert few.principal_msat.tolist() == many.principal_msat.tolist()
    assert (few.held_before_msat, few.held_after_msat) == (many.held_before_msat, many.held_after_msat)
    assert share_out(notes, *args, closing=closing, rotation=rotation).cash_msat.tolist() == few.cash_msat.tolist()
