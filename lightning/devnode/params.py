"""Binding and checking JSON-RPC params the way lightningd does.

Params come as an object or a positional array; each method declares its
parameter names in order, which ones are required, and a converter per name.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from lightning.devnode.rpcerror import INVALID_PARAMS, RpcFailure, bad_param

Converter = Callable[[str, Any], Any]

_AMOUNT = re.compile(r"^(\d+)(msat|sat)?$")


def bind(
    raw: Any,
    names: list[str],
    required: set[str],
    converters: Mapping[str, Converter],
) -> dict[str, Any]:
    """Named params with converted values; absent optional params are missing keys."""
    if raw is None:
        raw = {}
    if isinstance(raw, list):
        if len(raw) > len(names):
            raise RpcFailure(INVALID_PARAMS, "too many parameters")
        named = {name: value for name, value in zip(names, raw) if value is not None}
    elif isinstance(raw, dict):
        for key in raw:
            if key not in names:
                raise RpcFailure(INVALID_PARAMS, f"unknown parameter: {key}")
        named = {k: v for k, v in raw.items() if v is not None}
    else:
        raise RpcFailure(INVALID_PARAMS, "Expected array or object for params")
    for name in names:
        if name in required and name not in named:
            raise RpcFailure(INVALID_PARAMS, f"missing required parameter: {name}")
    return {name: converters.get(name, any_value)(name, value) for name, value in named.items()}


def any_value(name: str, value: Any) -> Any:
    return value


def u64(name: str, value: Any) -> int:
    # lightningd accepts numbers given as JSON strings too.
    if isinstance(value, bool):
        raise bad_param(name, "an unsigned 64 bit integer")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 0 or value >= 2**64:
        raise bad_param(name, "an unsigned 64 bit integer")
    return value


def s64(name: str, value: Any) -> int:
    # waitanyinvoice takes a negative lastpay_index and treats it as 0 (seen on v26.06).
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise bad_param(name, "an integer")
    return value


def msat(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise bad_param(name, "a millisatoshi amount")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        match = _AMOUNT.match(value)
        if match:
            amount = int(match.group(1))
            return amount * 1000 if match.group(2) == "sat" else amount
    raise bad_param(name, "a millisatoshi amount")


def msat_or_any(name: str, value: Any) -> int | None:
    """None means 'any' (an amountless invoice)."""
    if value == "any":
        return None
    try:
        amount = msat(name, value)
    except RpcFailure:
        raise bad_param(name, "positive msat or 'any'") from None
    if amount <= 0:
        raise bad_param(name, "positive msat or 'any'")
    return amount


def sat_or_all(name: str, value: Any) -> int | None:
    """Satoshis; None means 'all'."""
    if value == "all":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = _AMOUNT.match(value)
        if match:
            amount = int(match.group(1))
            return amount // 1000 if match.group(2) == "msat" else amount
    raise bad_param(name, "a satoshi amount or 'all'")


def string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_param(name, "a string")
    return value


def label(name: str, value: Any) -> str:
    # CLN labels may be strings or numbers; both are stored and shown as text.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad_param(name, "a string or number")
    return str(value)


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_param(name, "'true' or 'false'")
    return value


def hex32(name: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise bad_param(name, "a 32 byte hex value")
    return value.lower()


def pubkey(name: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"0[23][0-9a-fA-F]{64}", value):
        raise bad_param(name, "a node id")
    return value.lower()


def one_of(*choices: str) -> Converter:
    def convert(name: str, value: Any) -> str:
        if value not in choices:
            raise bad_param(name, "one of " + ", ".join(choices))
        return str(value)

    return convert


# A method's parameters: names in positional order, the required ones, converters.
Spec = tuple[list[str], set[str], Mapping[str, Converter]]
