"""`microlend operator create`: bootstrap the node operator's account."""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from marketplace.cli.common import current_database, fail, load_settings, settings_options
from marketplace.db import migrate
from marketplace.domain.errors import Refusal


def register(subparsers: "argparse._SubParsersAction[Any]") -> None:
    operator = subparsers.add_parser("operator", help="the node operator's account")
    operator_sub = operator.add_subparsers(dest="operator_command", metavar="ACTION")
    operator_sub.required = True
    create = operator_sub.add_parser(
        "create", parents=[settings_options()],
        help="create an operator account (password from the prompt, or stdin when piped)",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="Operator", help="display name")
    create.set_defaults(func=create_operator)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password (10 characters or more): ")
        again = getpass.getpass("Password again: ")
        if first != again:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def create_operator(args: argparse.Namespace) -> int:
    from marketplace.services.accounts import create_user

    settings = load_settings(args)
    if settings is None:
        return 2
    try:
        password = _read_password()
    except ValueError as exc:
        return fail(str(exc), 2)
    try:
        with current_database(settings) as database:
            user_id = create_user(database, settings, args.email, password, "operator", args.name)
    except migrate.DatabaseBehind as exc:
        return fail(str(exc))
    except Refusal as exc:
        return fail(exc.message, 2)
    print(f"operator account {args.email.strip().lower()} created (user id {user_id})")
    return 0
