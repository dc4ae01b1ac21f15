"""Hypothesis strategies for JSON values inside Core Lightning's schemas (and for any JSON at all).

CLN's schemas use their own type names (msat, u64, hash, pubkey, ...); each maps
to a strategy here. `if`/`then` branches contribute their properties as
optional keys, so generated objects are mostly, not always, schema-valid:
the fuzz tests hold either way, and `tests/lightning/schema.py` says which.
"""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

HEX = "0123456789abcdef"

_U = {"u8": 2**8 - 1, "u16": 2**16 - 1, "u32": 2**32 - 1, "u64": 2**64 - 1}


def _hex(n_bytes: int) -> st.SearchStrategy[str]:
    return st.text(HEX, min_size=2 * n_bytes, max_size=2 * n_bytes)


def _interesting(top: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 10**6), st.sampled_from([0, 1, top, 2**63 - 1, 2**63]).filter(lambda v: v <= top),
                     st.integers(0, top))


CLN_TYPE: dict[str, st.SearchStrategy[Any]] = {
    **{name: _interesting(top) for name, top in _U.items()},
    "msat": _interesting(2**64 - 1),
    "sat": _interesting(2**64 - 1),
    "s64": st.integers(-(2**63), 2**63 - 1),
    "s32": st.integers(-(2**31), 2**31 - 1),
    "s16": st.integers(-(2**15), 2**15 - 1),
    "integer": st.integers(-(2**64), 2**64),
    "number": st.one_of(st.integers(), st.floats(allow_nan=False)),
    "boolean": st.booleans(),
    "string": st.text(max_size=30),
    "hash": _hex(32),
    "secret": _hex(32),
    "txid": _hex(32),
    "hex": st.text(HEX, max_size=40).filter(lambda s: len(s) % 2 == 0),
    "signature": _hex(64),
    "bip340sig": _hex(64),
    "point32": _hex(32),
    "pubkey": st.sampled_from(["02", "03"]).flatmap(lambda p: _hex(32).map(lambda h: p + h)),
    "short_channel_id": st.tuples(st.integers(0, 10**6), st.integers(0, 5000), st.integers(0, 10)).map(
        lambda t: f"{t[0]}x{t[1]}x{t[2]}"),
    "short_channel_id_dir": st.just("103x1x0/1"),
    "outpoint": _hex(32).map(lambda h: h + ":0"),
    "utxo": _hex(32).map(lambda h: h + ":1"),
    "msat_or_all": st.one_of(st.just("all"), st.integers(0, 10**12)),
    "msat_or_any": st.one_of(st.just("any"), st.integers(0, 10**12)),
    "sat_or_all": st.one_of(st.just("all"), st.integers(0, 10**12)),
    "feerate": st.sampled_from(["normal", "urgent", "1000perkw"]),
    "currency": st.sampled_from(["bc", "tb", "bcrt", "tbs"]),
    "rune": st.text(max_size=10),
}

any_json: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
              st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=5)),
    max_leaves=20,
)


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, depth) for k in kind])
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return st.just({})
        props: dict[str, Any] = {k: v for k, v in schema.get("properties", {}).items() if v}
        for clause in schema.get("allOf", []):
            for branch in ("then", "else"):
                for key, sub in clause.get(branch, {}).get("properties", {}).items():
                    if sub:
                        props.setdefault(key, sub)
        required = [k for k in schema.get("required", []) if k in props]
        return st.fixed_dictionaries(
            {k: from_schema(props[k], depth + 1) for k in required},
            optional={k: from_schema(v, depth + 1) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=3)
    if isinstance(kind, str) and kind in CLN_TYPE:
        return CLN_TYPE[kind]
    return any_json
