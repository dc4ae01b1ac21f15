"""The `microlend` console script: one subcommand module per area.

Each module in this package exposes `register(subparsers)`, which adds its
subcommands and sets `func` on each parser: `func(args) -> int` is the exit code.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from marketplace.cli import (
    db_commands, lightning_commands, loan_commands, regtest_commands, server_commands, user_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microlend", description="Microlend: peer-to-peer microlending over Lightning."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in (server_commands, db_commands, user_commands, loan_commands, lightning_commands,
                   regtest_commands):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code

