"""A run of part-payments projects the rest of the loan once (LoanState.project_from), with the same result.

apply_payment leaves the installments after a part-paid one unprojected; they
are projected when first read. Whatever the pattern (early, late, tiny, lump,
late fees, any contract), a loan paid that way must be indistinguishable,
payment by payment, from one projected after every payment.
"""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.domain.loans.allocation import LoanState, apply_payment, assess, start, validate
from marketplace.domain.loans.delinquency import DelinquencyPolicy, late_fees_due
from tests.properties.loan_patterns import KINDS, amount_of, contracts

POLICY = DelinquencyPolicy(grace_days=3, default_after_days=60, write_off_after_days=120, late_fee_bps=500,
                           late_fee_flat_msat=1_000)


def projected(state: LoanState) -> LoanState:
    """The same loan with every installment projected now."""
    return LoanState(state.contract, state.balance, state.installments, state.level_msat)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), contracts(max_count=30))
def test_deferring_the_projection_changes_nothing(data, contract) -> None:  # type: ignore[no-untyped-def]
    lazy = eager = start(contract)
    on = contract.start_date
    deferred = 0
    history: list[object] = [contract]
    for _ in range(data.draw(st.integers(1, 40))):
        on += timedelta(days=data.draw(st.sampled_from([0, 0, 0, 1, 2, 9, 40])))
        if data.draw(st.integers(0, 9)) == 0:
            fees = late_fees_due(lazy.installments, on, POLICY)
            lazy, eager = assess(lazy, fees, on), assess(eager, fees, on)
        kind = data.draw(st.sampled_from(KINDS + ("tiny", "tiny", "partial")))
        amount = amount_of(data, kind, eager, on)
        history.append((on, kind, amount))
        a, b = apply_payment(lazy, amount, on), apply_payment(eager, amount, on)
        deferred += a.state.project_from is not None
        assert (a.received_msat, a.applied_msat, a.refund_msat, a.late_fee_msat, a.interest_msat,
                a.principal_msat) == (b.received_msat, b.applied_msat, b.refund_msat, b.late_fee_msat,
                                      b.interest_msat, b.principal_msat)
        lazy, eager = a.state, projected(b.state)
        assert lazy == eager, history
        assert lazy.next_due(on) == eager.next_due(on) and lazy.payoff_msat(on) == eager.payoff_msat(on)
        validate(lazy)
        if eager.is_repaid:
            assert lazy.is_repaid
            break


def test_a_run_of_tiny_payments_is_deferred_and_projects_like_the_eager_path() -> None:
    """The case the settlement path meets most: many small payments toward the installment being paid."""
    from datetime import date

    from marketplace.domain.loans.schedules import Contract, Frequency, Method

    contract = Contract(1_000_000, 1800, 50, Frequency.WEEKLY, Method.ANNUITY, date(2026, 1, 1))
    lazy = eager = start(contract)
    deferred = 0
    for k in range(100):
        on = date(2026, 1, 1) + timedelta(days=k // 10)
        lazy = apply_payment(lazy, 1_000 + k % 7, on).state
        eager = projected(apply_payment(eager, 1_000 + k % 7, on).state)
        deferred += lazy.project_from is not None
    assert deferred > 80  # most of them waited
    assert lazy.installments == eager.installments and lazy.balance == eager.balance
    assert lazy.recorded != lazy.installments  # the rest of the loan really was waiting to be projected
