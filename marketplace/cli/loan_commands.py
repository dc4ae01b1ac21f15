"""`microlend loans age` (the daily job by hand) and `microlend demo` (a living demo marketplace)."""
from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from pyln.client import LightningRpc, RpcError

from marketplace.cli.common import current_database, fail, load_settings, settings_options
from marketplace.db import migrate
from marketplace.devnode_child import DevNodeChild
from marketplace.domain.errors import Refusal


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parent = settings_options()
    loans = subparsers.add_parser("loans", help="loan jobs")
    actions = loans.add_subparsers(dest="loans_command", metavar="ACTION")
    actions.required = True
    age = actions.add_parser("age", parents=[parent],
                             help="the daily job: expire requests, late fees, delinquency, default, write-off")
    age.add_argument("--as-of", type=date.fromisoformat, default=None,
                     help="the day to age to (YYYY-MM-DD; not in the future, not before the last run)")
    age.set_defaults(func=age_command)

    demo = subparsers.add_parser("demo", parents=[parent],
                                 help="fill an empty marketplace with demo users and loans in every state")
    demo.add_argument("--force", action="store_true", help="add demo data even if users exist")
    demo.set_defaults(func=demo_command)


def age_command(args: argparse.Namespace) -> int:
    from marketplace.services.loans import age_loans

    settings = load_settings(args)
    if settings is None:
        return 2
    try:
        with current_database(settings) as database:
            report = age_loans(database, settings, args.as_of)
    except (migrate.DatabaseBehind, Refusal) as exc:
        return fail(str(exc))
    print(f"aged {report.checked} active loan(s): {report.changed} changed state, "
          f"{report.late_fees_assessed} late fee(s), {report.written_off} written off, {report.repaid} repaid; "
          f"{report.expired_requests} request(s) expired, {report.lapsed_requests} lapsed undisbursed")
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """Fill the marketplace; on the embedded default, with the dev node started here as `run` does."""
    from marketplace.demo import run_demo

    settings = load_settings(args)
    if settings is None:
        return 2
    child: DevNodeChild | None = None
    if settings.is_embedded and not settings.cln_rpc and not _answers(settings.cln_rpc_path):
        # Nobody runs the dev node (`microlend run` would): start it for the demo, and stop it after.
        # Its data stays in the data dir, so the app started later finds the same node, channels and payments.
        child = DevNodeChild(settings.devnode_dir)
        try:
            child.start()
        except RuntimeError as exc:
            return fail(str(exc))
        print(f"dev node: started in {settings.devnode_dir} for the demo (stopped when it ends)", flush=True)
    elif not _answers(settings.cln_rpc_path):
        return fail(f"the Lightning node cannot be reached at {settings.cln_rpc_path}. Start it (or, for the "
                    "embedded dev node, unset MICROLEND_CLN_RPC and run `microlend demo` or `microlend run`).")
    try:
        return run_demo(settings, force=args.force)
    finally:
        if child is not None:
            child.stop()


def _answers(socket_path: str) -> bool:
    """Whether a Lightning node (the dev node or CLN) answers on this socket (an error is an answer too)."""
    try:
        LightningRpc(socket_path).getinfo()
    except RpcError:
        return True
    except (OSError, ValueError):
        return False
    return True
