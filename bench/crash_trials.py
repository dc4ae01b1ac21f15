"""Crash trials, the long run: `python -m bench.crash_trials [--trials 200] [--database-url postgresql://...]`.

Real processes throughout (tests/crash/trials.py): a `microlend serve` killed with SIGKILL at every named point
on a money path, round-robin, and at random moments (every third trial), with payments arriving while it is
down; after each restart the checker proves nothing was lost or doubled. Prints

    crash trials: N, lost: L, doubled: D

(the truth: distinct findings over the run), every violation, the points not reached, and the catch-up time
after a restart (restart -> every invoice paid while the app was down is credited), median and worst, beside
its baseline from the same restarts: restart -> the app answers HTTP. The app is started as a child forked from
a launcher that has imported it (tests/crash/forked.py): a restart then costs what starting the service costs,
not seconds of importing numpy and scipy again.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time

from bench.common import fresh_database, scratch_dir
from tests.crash.forked import Launcher
from tests.crash.trials import Trials, TrialResult, schedule, verify_with_cli
from tests.fixtures.devnode import DevNode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (a fresh database is made on it); "
                                                             "default: a SQLite file")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, database file)")
    args = parser.parse_args(argv)

    root = scratch_dir()
    database = fresh_database(root, args.database_url)
    url = database.engine.url.render_as_string(hide_password=False)
    database.dispose()
    node = DevNode(root / "devnode")
    node.start()
    launcher = Launcher()
    trials = Trials(root, url, node, seed=args.seed, cli_verify=False, launcher=launcher)
    results: list[TrialResult] = []
    lost: dict[str, int] = {}
    doubled: dict[str, int] = {}
    other: dict[str, int] = {}
    began = time.monotonic()
    print(f"crash trials on {url.split('@')[-1]} in {root}", flush=True)
    try:
        for i, point in enumerate(schedule(args.trials), 1):
            result = trials.trial(point)
            results.append(result)
            for found, table in ((result.report.lost, lost), (result.report.doubled, doubled),
                                 (result.report.other, other)):
                for text in found:
                    table.setdefault(text, i)  # the checker sees a finding again after every later trial
            print(f"{i:4d} {point:24s} {'reached' if result.reached else 'NOT REACHED':11s} "
                  f"catch-up {result.catch_up_s:6.2f} s  ready {result.ready_s:6.2f} s  "
                  f"violations {len(result.report.violations)}", flush=True)
    finally:
        trials.stop()
        launcher.close()
        node.kill()
    final_verify = verify_with_cli(url)
    catch_up = [r.catch_up_s for r in results]
    ready = [r.ready_s for r in results]
    not_reached = sorted({r.point for r in results if not r.reached})
    print()
    print(f"crash trials: {len(results)}, lost: {len(lost)}, doubled: {len(doubled)}")
    for title, table in (("lost", lost), ("doubled", doubled), ("other", other)):
        for text, first in table.items():
            print(f"  {title} (first after trial {first}): {text}")
    print(f"named points: {sum(1 for r in results if r.point != 'random')} trials over "
          f"{len({r.point for r in results if r.point != 'random'})} points; random moments: "
          f"{sum(1 for r in results if r.point == 'random')}; not reached: {', '.join(not_reached) or 'none'}")
    print(f"catch-up after a restart: median {statistics.median(catch_up):.2f} s, worst {max(catch_up):.2f} s; "
          f"baseline (restart -> answering HTTP): median {statistics.median(ready):.2f} s, worst {max(ready):.2f} s; "
          f"ratio of medians {statistics.median(catch_up) / statistics.median(ready):.2f}")
    print(f"microlend ledger verify at the end: {'clean' if not final_verify else final_verify[0]}")
    print(f"wall time {time.monotonic() - began:.0f} s")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if not (lost or doubled or other or not_reached or final_verify) else 1


if __name__ == "__main__":
    sys.exit(main())
