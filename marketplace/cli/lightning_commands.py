"""`microlend devnode` and `microlend wallet ...`: the dev node and a demo wallet.

The wallet commands talk to a dev node's socket through the same adapter the
app uses, as a borrower's or lender's wallet app would talk to its node.
"""
from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

import anyio

from lightning.cln import ClnAdapter
from lightning.devnode.main import add_arguments, run, socket_path
from lightning.errors import LightningError
from lightning.invoices import InvalidInvoice, decode_invoice

DEFAULT_DATA_DIR = Path("data/devnode")
# A demo wallet pays what it is asked to; the cap only stops a runaway fee.
WALLET_MAXFEE_MSAT = 100_000
WALLET_RETRY_FOR_S = 30


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    devnode = subparsers.add_parser("devnode", help="run the Lightning dev node (CLN stand-in)")
    add_arguments(devnode)
    devnode.set_defaults(func=_devnode)

    wallet = subparsers.add_parser("wallet", help="use a dev node wallet (pay or create invoices)")
    actions = wallet.add_subparsers(dest="wallet_command", metavar="ACTION")
    actions.required = True

    pay = actions.add_parser("pay", help="pay a BOLT11 invoice from a dev node wallet")
    pay.add_argument("bolt11")
    pay.add_argument("--amount-msat", type=int, default=None, help="for amountless invoices")
    _wallet_options(pay)
    pay.set_defaults(func=_wallet_pay)

    invoice = actions.add_parser("invoice", help="create an invoice on a dev node wallet")
    invoice.add_argument("amount_sat", type=int)
    invoice.add_argument("--description", default="microlend demo wallet invoice")
    invoice.add_argument("--label", default=None)
    invoice.add_argument("--expiry", type=int, default=3600, help="seconds (default 3600)")
    _wallet_options(invoice)
    invoice.set_defaults(func=_wallet_invoice)


def _wallet_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default="wallet", help="dev node to use (default wallet)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="the dev node's data dir (default ./data/devnode)")
    parser.add_argument("--rpc", help="a lightningd socket instead (e.g. the wallet node `microlend regtest` prints)")


def _devnode(args: argparse.Namespace) -> int:
    return run(args.data_dir, args.nodes, args.record)


def _adapter(args: argparse.Namespace) -> ClnAdapter:
    return ClnAdapter(args.rpc or str(socket_path(args.data_dir, args.node)))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _wallet_pay(args: argparse.Namespace) -> int:
    try:
        invoice = decode_invoice(args.bolt11)
    except InvalidInvoice as exc:
        return _fail(exc.message)
    adapter = _adapter(args)
    amount = args.amount_msat if invoice.amount_msat is None else None
    try:
        result = anyio.run(adapter.pay, invoice.bolt11, amount, WALLET_MAXFEE_MSAT, WALLET_RETRY_FOR_S)
    except LightningError as exc:
        return _fail(f"{type(exc).__name__}: {exc.message}")
    print(f"paid {result.amount_msat} msat (fee {result.fee_msat} msat), "
          f"preimage {result.payment_preimage}")
    return 0


def _wallet_invoice(args: argparse.Namespace) -> int:
    if args.amount_sat <= 0:
        return _fail("the amount must be more than zero satoshis")
    label = args.label or f"wallet-{secrets.token_hex(8)}"
    adapter = _adapter(args)
    try:
        created = anyio.run(
            adapter.create_invoice, args.amount_sat * 1000, label, args.description, args.expiry
        )
    except LightningError as exc:
        return _fail(f"{type(exc).__name__}: {exc.message}")
    print(created.bolt11)
    return 0
