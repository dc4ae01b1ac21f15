"""Failover of the worker lock: SIGKILL the process running the payment listener, time until crediting resumes.

Run by hand:
    .venv/bin/python -m bench.failover [--kills 10] [--processes 3] [--poll 1.0]
                                       [--database-url postgresql://postgres@127.0.0.1:5432/test]

Three `microlend serve` processes share one database and one dev node. For
each trial: pay an invoice and time it to its credit with a holder in place
(the baseline, same run), then SIGKILL the holder, pay one invoice and time
until it is credited by the new holder (the failover), then start a fresh
process in place of the killed one. Prints median and worst of both and
their ratio. `--poll` is MICROLEND_LEADER_POLL_S, the standbys' retry period
and so the bulk of the failover time.
"""
from __future__ import annotations

import argparse
import statistics
import time

from bench.common import BenchNode, fresh_database, scratch_dir
from lightning.cln import ClnAdapter
from marketplace.settings import Settings
from tests.crash.support import AppProcess, wait_for
from tests.ledger_helpers import make_user
from tests.multiprocess.cluster import Cluster, credited, credits_per_hash, issue_invoices, pay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--poll", type=float, default=1.0, help="MICROLEND_LEADER_POLL_S (default 1.0, the default)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server URL (default: a SQLite file)")
    args = parser.parse_args()

    root = scratch_dir()
    node = BenchNode(root)
    database = fresh_database(root, args.database_url)
    settings = Settings(data_dir=root / "data", database_url=database.url, secret_key="bench",
                        invoice_limit_count=10**6)
    users = [database.run(make_user)[0] for _ in range(4)]
    made = issue_invoices(database, ClnAdapter(node.rpc("marketplace")), settings, users, 2 * args.kills,
                          1_000_000)
    env = {"MICROLEND_LEADER_POLL_S": str(args.poll), "MICROLEND_LISTENER_WAIT_S": "30"}
    cluster = Cluster(root, database.url, node.rpc("marketplace"), size=args.processes, env=env)
    cluster.start()
    from pyln.client import LightningRpc

    wallet = LightningRpc(node.rpc("wallet"))
    baseline: list[float] = []
    failover: list[float] = []
    paid = 0
    try:
        for trial in range(args.kills):
            cluster.leader()
            started = time.monotonic()
            pay(wallet, made[paid][1])
            paid += 1
            wait_for(lambda: credited(database) >= paid, 60, "the baseline credit", *cluster.apps)
            baseline.append(time.monotonic() - started)

            leader = cluster.leader()
            started = time.monotonic()
            leader.kill9()
            pay(wallet, made[paid][1])
            paid += 1
            wait_for(lambda: credited(database) >= paid, 60, "the new holder's credit", *cluster.apps)
            failover.append(time.monotonic() - started)
            # A fresh process in place of the killed one, as a supervisor (systemd, k8s) would start.
            replacement = AppProcess(root, database.url, node.rpc("marketplace"), name=f"app-r{trial}", env=env)
            cluster.apps[cluster.apps.index(leader)] = replacement
            replacement.start()
            replacement.wait_ready()
            print(f"trial {trial + 1}: baseline {baseline[-1] * 1000:.0f} ms, failover {failover[-1] * 1000:.0f} ms",
                  flush=True)
    finally:
        cluster.stop()
        node.stop()
    doubled = sum(1 for n in credits_per_hash(database).values() if n > 1)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\n{backend}, {args.processes} processes, leader poll {args.poll} s, {args.kills} kills; "
          f"{paid} payments, doubled credits: {doubled}")
    print(f"baseline (pay -> credited, holder in place): median {statistics.median(baseline) * 1000:.0f} ms, "
          f"worst {max(baseline) * 1000:.0f} ms")
    print(f"failover (kill -> the new holder credits):   median {statistics.median(failover) * 1000:.0f} ms, "
          f"worst {max(failover) * 1000:.0f} ms")
    print(f"ratio failover/baseline (medians): {statistics.median(failover) / statistics.median(baseline):.1f}x")
    database.dispose()


if __name__ == "__main__":
    main()
