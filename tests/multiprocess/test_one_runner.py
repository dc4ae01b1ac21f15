"""The reconciler, the daily aging job and the reminder sender run in one process at a time: the lock holder.

Two worker supervisors on one database (each with its own lock session or
file descriptor, as two processes have): only the holder's jobs make passes;
when it stops, the other takes the lock and its jobs start.
"""
from __future__ import annotations

import anyio

from marketplace.db.engine import Database
from marketplace.settings import Settings
from marketplace.workers.health import WorkerHealth
from marketplace.workers.leadership import Leadership
from marketplace.workers.supervisor import STANDBY, WorkerSet, run_workers_when_leader
from tests.fixtures.devnode import DevNode


def _set(database: Database, devnode: DevNode, settings: Settings) -> WorkerSet:
    return WorkerSet(database, devnode.adapter("marketplace"), settings, WorkerHealth("listener"),
                     WorkerHealth("reconciler"), WorkerHealth("aging"), WorkerHealth("notices"),
                     WorkerHealth("auto-invest"))


def _passes(workers: WorkerSet) -> list[int]:
    return [h.counters.get("passes", 0) for h in (workers.reconciler_health, workers.aging_health,
                                                  workers.notices_health, workers.autoinvest_health)]


def test_only_the_lock_holder_runs_the_jobs_and_another_takes_over(
        settings: Settings, database: Database, devnode: DevNode) -> None:
    fast = settings.replace(leader_poll_s=0.1, reconcile_every_s=1, aging_every_s=1, listener_wait_s=1)
    first, second = _set(database, devnode, fast), _set(database, devnode, fast)

    async def scenario() -> None:
        async with anyio.create_task_group() as outer:
            first_scope = anyio.CancelScope()

            async def run_first() -> None:
                with first_scope:
                    await run_workers_when_leader(first)

            outer.start_soon(run_first)
            await anyio.sleep(0.5)
            outer.start_soon(run_workers_when_leader, second)
            await anyio.sleep(1.5)
            assert min(_passes(first)) >= 1 and _passes(second) == [0, 0, 0, 0]
            assert all(h.state == STANDBY for h in second.healths())
            assert first.listener_health.state != STANDBY

            first_scope.cancel()  # the holder goes away: its lock is released
            with anyio.fail_after(10):
                while min(_passes(second)) < 1:
                    await anyio.sleep(0.05)
            frozen = _passes(first)
            await anyio.sleep(1.2)
            assert _passes(first) == frozen  # the old holder runs nothing any more
            outer.cancel_scope.cancel()

    anyio.run(scenario)


def test_a_holder_that_loses_its_lock_stops_claiming_it(database: Database) -> None:
    one, two = Leadership(database), Leadership(database)
    assert one.try_acquire() and one.still_held()
    assert not two.try_acquire()
    one.release()
    assert not one.still_held()
    assert two.try_acquire() and two.still_held()
    two.release()
