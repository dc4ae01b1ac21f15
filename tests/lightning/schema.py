"""Validating JSON-RPC requests and replies against Core Lightning's own schemas.

CLN's schemas use JSON Schema with extra `type` names (msat, u64, pubkey,
short_channel_id, ...). Each gets a checker here; everything else is plain
Draft 7 (including the if/then/else that ties paid-only fields to status).
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft7Validator
from jsonschema.validators import extend

SCHEMA_DIR = Path(__file__).parent / "cln-schemas"
TRANSCRIPT_DIR = Path(__file__).parent / "cln-transcripts"

_HEX = re.compile(r"^([0-9a-fA-F]{2})*$")
_SCID = re.compile(r"^\d+x\d+x\d+$")
_AMOUNT_TEXT = re.compile(r"^\d+(msat|sat)?$")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unsigned(bits: int) -> Any:
    return lambda _checker, value: _int(value) and 0 <= value < 2**bits


def _hexlen(n_bytes: int | None) -> Any:
    def check(_checker: Any, value: Any) -> bool:
        if not isinstance(value, str) or not _HEX.match(value):
            return False
        return n_bytes is None or len(value) == 2 * n_bytes

    return check


def _msat(_checker: Any, value: Any) -> bool:
    return (_int(value) and value >= 0) or (isinstance(value, str) and bool(_AMOUNT_TEXT.match(value)))


def _msat_or(word: str) -> Any:
    return lambda checker, value: value == word or _msat(checker, value)


def _pubkey(_checker: Any, value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"0[23][0-9a-fA-F]{64}", value))


def _outpoint(_checker: Any, value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[0-9a-fA-F]{64}:\d+", value))


CLN_TYPES: dict[str, Any] = {
    "msat": _msat,
    "sat": lambda c, v: _int(v) and v >= 0,
    "msat_or_all": _msat_or("all"),
    "msat_or_any": _msat_or("any"),
    "sat_or_all": lambda c, v: v == "all" or (_int(v) and v >= 0) or (isinstance(v, str) and bool(_AMOUNT_TEXT.match(v))),
    "u64": _unsigned(64),
    "u32": _unsigned(32),
    "u16": _unsigned(16),
    "u8": _unsigned(8),
    "s64": lambda c, v: _int(v),
    "s32": lambda c, v: _int(v),
    "s16": lambda c, v: _int(v),
    "pubkey": _pubkey,
    "point32": _hexlen(32),
    "hash": _hexlen(32),
    "secret": _hexlen(32),
    "txid": _hexlen(32),
    "hex": _hexlen(None),
    "signature": _hexlen(None),
    "bip340sig": _hexlen(64),
    "short_channel_id": lambda c, v: isinstance(v, str) and bool(_SCID.match(v)),
    "short_channel_id_dir": lambda c, v: isinstance(v, str) and bool(re.fullmatch(r"\d+x\d+x\d+/[01]", v)),
    "outpoint": _outpoint,
    "utxo": _outpoint,
    "feerate": lambda c, v: isinstance(v, str) or _int(v),
    "number": lambda c, v: (_int(v) or isinstance(v, float)),
    "currency": lambda c, v: isinstance(v, str),
    "rune": lambda c, v: isinstance(v, str),
    "outputdesc": lambda c, v: isinstance(v, dict),
    "string_map": lambda c, v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
}

ClnValidator = extend(
    Draft7Validator, type_checker=Draft7Validator.TYPE_CHECKER.redefine_many(CLN_TYPES)
)


@cache
def method_schema(method: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / f"{method}.json").read_text())
    return data


def has_schema(method: str) -> bool:
    return (SCHEMA_DIR / f"{method}.json").exists()


def _errors(schema: dict[str, Any], instance: Any) -> list[str]:
    validator = ClnValidator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def request_errors(method: str, params: Any) -> list[str]:
    """Problems with a request's params (named params only; positional are mapped first)."""
    schema = method_schema(method)["request"]
    if isinstance(params, list):
        names = list(schema.get("properties", {}))
        params = dict(zip(names, params))
    return _errors(schema, params or {})


def response_errors(method: str, result: Any) -> list[str]:
    return _errors(method_schema(method)["response"], result)


def transcripts() -> list[dict[str, Any]]:
    out = []
    for path in sorted(TRANSCRIPT_DIR.glob("*.json")):
        data: dict[str, Any] = json.loads(path.read_text())
        data["file"] = path.name
        out.append(data)
    return out


def json_shape(value: Any) -> Any:
    """Keys and JSON types, recursively (first list item only), for shape comparison."""
    if isinstance(value, dict):
        return {k: json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


__all__ = ["jsonschema", "request_errors", "response_errors", "transcripts", "json_shape"]
