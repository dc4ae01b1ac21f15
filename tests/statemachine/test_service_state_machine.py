"""The whole service layer as a hypothesis state machine, on SQLite and PostgreSQL (issue 12, part 3).

The machine and its model are in machine.py. CI size: MICROLEND_STATE_MACHINE_SEQUENCES sequences per
database (default below), each up to STEPS steps; bench/state_machine.py runs thousands.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import BACKENDS
from tests.databases import PostgresTemplate, SqliteTemplate
from tests.fixtures.devnode import DevNode
from tests.statemachine import machine

# 30 per database keeps the whole suite near its 10-minute budget on a 2-core machine; the bench runs thousands.
SEQUENCES = int(os.environ.get("MICROLEND_STATE_MACHINE_SEQUENCES", "30"))
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
        machine.WORLD = None


def test_the_services_keep_the_books_and_the_model(world: machine.World) -> None:
    run_state_machine_as_test(machine.ServiceMachine, settings=settings(
        max_examples=SEQUENCES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
    assert world.sequences >= SEQUENCES // 2  # it really ran about that many sequences, not a handful
    print(f"\nstate machine: {world.sequences} sequences, {world.steps} steps, {world.seconds_in_steps:.1f} s in steps")
    print("reached:", dict(sorted(world.happened.items())))
