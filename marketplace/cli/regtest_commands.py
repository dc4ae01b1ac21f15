"""`microlend regtest`: the marketplace in production mode on a real local Lightning network.

Starts bitcoind on regtest and two Core Lightning nodes (the marketplace's and a wallet's, joined by a
funded channel with half its capacity on each side) from the binaries on PATH or named by
MICROLEND_LIGHTNINGD / MICROLEND_BITCOIND, then serves the marketplace in production mode against the
marketplace node. An operator tries the real thing on one machine without Docker; the wallet node pays
invoices (`microlend wallet pay BOLT11 --rpc ...`, printed at start). Everything lives in
`--data-dir` (default ./data/regtest), rebuilt on each start: regtest coins are worth nothing, and a
database kept across a fresh node would hold a listener cursor the new node never issued.
"""
from __future__ import annotations

import argparse
import secrets
import shutil
from pathlib import Path
from typing import Any

from lightning.regtest import Binaries, RegtestError, marketplace_network
from marketplace.cli.common import fail
from marketplace.db import migrate
from marketplace.db.engine import Database
from marketplace.settings import SettingsError, settings_from_env

DEFAULT_DIR = Path("data/regtest")


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "regtest", help="start bitcoind + two Core Lightning nodes on regtest and serve the marketplace "
                        "in production mode on them (binaries on PATH or MICROLEND_LIGHTNINGD/MICROLEND_BITCOIND)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR,
                        help="network and database, rebuilt on each start (default ./data/regtest)")
    parser.add_argument("--database-url", help="default: an SQLite file in the data dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-serve", action="store_true",
                        help="build the network, print how to reach it, and stop it again (a check)")
    parser.set_defaults(func=regtest)


def regtest(args: argparse.Namespace) -> int:
    try:
        binaries = Binaries.find()
    except RegtestError as exc:
        return fail(str(exc))
    base = args.data_dir.resolve()
    if base.exists():
        shutil.rmtree(base)
    network = marketplace_network(base / "net", with_router=False, binaries=binaries)
    print(f"regtest: starting bitcoind and Core Lightning ({binaries.lightningd}) in {base} ...", flush=True)
    try:
        network.start()
    except RegtestError as exc:
        return fail(f"the regtest network did not come up: {exc}")
    try:
        overrides: dict[str, object] = {
            "mode": "production", "data_dir": base, "cln_rpc": network.rpc_path("marketplace"),
            "database_url": args.database_url or f"sqlite:///{base / 'microlend.sqlite3'}",
            "secret_key": secrets.token_urlsafe(48), "host": args.host, "port": args.port,
            "public_url": f"http://{args.host}:{args.port}",
        }
        try:
            settings = settings_from_env({}, overrides)
        except SettingsError as exc:
            return fail(str(exc), 2)
        database = Database(settings.database_url)
        try:
            migrate.upgrade(database.engine)
        finally:
            database.dispose()
        cli = Path(binaries.lightningd).with_name("lightning-cli")
        wallet = network["wallet"]
        print("regtest: up. The marketplace node and a wallet node share a 10,000,000 sat channel, 5,000,000 "
              "on each side.")
        print(f"  marketplace node: {network['marketplace'].node_id} (socket {network.rpc_path('marketplace')})")
        print(f"  wallet node:      {wallet.node_id}")
        print(f"  pay an invoice:   .venv/bin/microlend wallet pay BOLT11 --rpc {wallet.rpc_path}")
        print(f"  or:               {cli} --lightning-dir={wallet.lightning_dir} --network=regtest xpay BOLT11")
        print(f"  database:         {settings.database_url}")
        if args.no_serve:
            return 0
        from marketplace.cli.server_commands import serve_settings

        print(f"Microlend (production mode) on http://{settings.host}:{settings.port}/ - Ctrl-C stops it "
              "and the network", flush=True)
        return serve_settings(settings)
    finally:
        network.stop()
