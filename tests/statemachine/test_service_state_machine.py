"""The whole service layer as a hypothesis state machine, on SQLite and PostgreSQL (issue 12, part 3).

The machine and its model are in machine.py. CI size: SEQUENCES hypothesis examples per database
(MICROLEND_STATE_MACHINE_SEQUENCES overrides), each up to STEPS steps; bench/state_machine.py runs thousands.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import BACKENDS
from tests.databases import PostgresTemplate, SqliteTemplate
from tests.fixtures.devnode import DevNode
from marketplace.domain.loans.schedules import Frequency
from tests.statemachine import machine

# CI size: 120 hypothesis examples on SQLite (about 145 sequences) and 50 on PostgreSQL (about 55; one costs
# about twice as much there), in PARTS test items per database so the suite's two workers share them. What the
# suite's 10-minute budget on the shared 2-core build machine leaves: at 200 and 100 the fresh-clone CI run took
# 9m11s, at 150 and 60 9m03s (7m06s at 70 and 30 an hour before: the machine's speed varies by a third). Every
# run draws new sequences. MICROLEND_STATE_MACHINE_SEQUENCES sets both totals; the bench runs thousands.
SEQUENCES = {"sqlite": 120, "postgresql": 50}
PARTS = 2
STEPS = 15


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, devnode_session: DevNode, tmp_path: Path) -> Iterator[machine.World]:
    name = "sqlite_template" if request.param == "sqlite" else "postgres_template"
    template: SqliteTemplate | PostgresTemplate = request.getfixturevalue(name)
    machine.WORLD = machine.World(template, devnode_session.rpc_path("marketplace"),
                                  devnode_session.rpc_path("wallet"), tmp_path)
    try:
        yield machine.WORLD
    finally:
        machine.WORLD.close()
        machine.WORLD = None


@pytest.mark.parametrize("part", range(PARTS))
def test_the_services_keep_the_books_and_the_model(world: machine.World, part: int) -> None:
    total = int(os.environ.get("MICROLEND_STATE_MACHINE_SEQUENCES", "0")) or SEQUENCES[
        "sqlite" if isinstance(world.templates, SqliteTemplate) else "postgresql"]
    examples = max(1, total // PARTS)
    # No shrinking here (it can take minutes): a failing sequence is printed as it was found, at most STEPS
    # steps; `python -m bench.state_machine --shrink` shrinks.
    run_state_machine_as_test(machine.ServiceMachine, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.target]))
    assert world.sequences >= examples // 2  # it really ran about that many sequences, not a handful
    print(f"\nstate machine: {world.sequences} sequences, {world.steps} steps, {world.seconds_in_steps:.1f} s in steps")
    print("reached (sequences):", dict(sorted(world.reached.items())))


def test_a_payoff_while_an_installment_is_past_due_records_all_its_interest_on_installments(
        world: machine.World) -> None:
    """The smallest sequence of the finding of 2026-11-28 (in 300 of 10,003 sequences; fixed in
    allocation._record_prepaid_interest), step by step: a 30,000 sat loan in three weekly
    installments from three lenders, disbursed; 8 days pass (the first installment is a day past due); the
    borrower pays the whole payoff. Its installments record all the interest it paid (they recorded less)."""
    run = machine.ServiceMachine()
    try:
        run.start(depth="disbursed", lenders=3, deposit_sat=16_000, loan_sat=30_000, count=3,
                  frequency=Frequency.WEEKLY, robots=0)
        loan_id = min(run.loans)
        run._age(8)
        assert run.loans[loan_id].delinquency == "grace"
        run._repay(loan_id, 100, exact_due=False)
        assert run.loans[loan_id].status == "repaid"
        problems = run.database.read(run._problems)
    finally:
        run.teardown()
    assert problems == []
