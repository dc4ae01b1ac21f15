"""The service state machine (tests/statemachine/machine.py) for as many sequences as you have time for.

Run by hand:  .venv/bin/python -m bench.state_machine [--sequences 10000] [--steps 20] [--batch 200]
              [--database-url postgresql://postgres@127.0.0.1:5432/test]

Sequences run in batches of `--batch` hypothesis examples, each batch with a
new random seed; a batch that finds a violation reports it (shrunk) and the
run goes on with the next batch, so one run counts every violation class it
meets rather than stopping at the first. Prints
`sequences: N, steps: S, violations: V`, then each violation.
"""
from __future__ import annotations

import argparse
import re
import time
import traceback
from collections import Counter

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from bench.common import BenchNode, scratch_dir
from tests.databases import PostgresTemplate, SqliteTemplate
from tests.statemachine import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=20, help="the most steps in one sequence")
    parser.add_argument("--batch", type=int, default=200, help="sequences per hypothesis run")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server (default: SQLite files)")
    parser.add_argument("--shrink", action="store_true",
                        help="shrink each violation to its smallest sequence (can take minutes per violation)")
    args = parser.parse_args()
    phases = [Phase.generate, Phase.target] + ([Phase.shrink, Phase.explain] if args.shrink else [])

    root = scratch_dir()
    node = BenchNode(root)
    templates: SqliteTemplate | PostgresTemplate = (
        PostgresTemplate(args.database_url) if args.database_url else SqliteTemplate(root))
    world = machine.World(templates, node.rpc("marketplace"), node.rpc("wallet"), root / "data")
    machine.WORLD = world
    violations: list[str] = []
    classes: Counter[str] = Counter()  # violations by their text with the numbers taken out
    started = time.monotonic()
    try:
        while world.sequences < args.sequences:
            batch = min(args.batch, args.sequences - world.sequences)
            try:
                run_state_machine_as_test(machine.ServiceMachine, settings=settings(
                    max_examples=batch, stateful_step_count=args.steps, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False, phases=phases))
            except Exception as exc:  # a violation: keep it and go on with a new seed
                found = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else [exc]
                violations.append("\n".join("".join(traceback.format_exception_only(type(e), e)).strip()
                                             for e in found))
                classes[re.sub(r"\d+", "N", violations[-1].splitlines()[0])[:300]] += 1
                print(f"--- violation {len(violations)}:\n{violations[-1]}", flush=True)
                if hasattr(exc, "__notes__"):
                    print("\n".join(exc.__notes__), flush=True)  # the failing sequence, step by step
            print(f"... {world.sequences} sequences, {world.steps} steps, {len(violations)} violations "
                  f"({len(classes)} distinct), "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    finally:
        machine.WORLD = None
        world.close()
        templates.close()
        node.stop()
    elapsed = time.monotonic() - started
    print(f"sequences: {world.sequences}, steps: {world.steps}, violations: {len(violations)} "
          f"({len(classes)} distinct)")
    print(f"database: {'postgresql' if args.database_url else 'sqlite'}, {elapsed:.0f} s "
          f"({world.seconds_in_steps:.0f} s inside service calls)")
    print("reached (sequences):", dict(sorted(world.reached.items())))
    print("happened (times):", dict(sorted(world.happened.items())))
    for i, (text, n) in enumerate(classes.most_common(), 1):
        print(f"--- distinct violation {i} ({n} batches):\n{text}")


if __name__ == "__main__":
    main()
