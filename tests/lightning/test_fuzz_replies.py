"""Fuzzing what the node answers: every reply the adapter parses, inside and outside CLN's schemas.

1. The readers in lightning/cln_parse.py, on replies generated from the CLN
   schemas, on recorded real replies with a field removed or replaced, and on
   any JSON: each returns a value or raises `MalformedReply`, nothing else.
2. The adapter over a real unix socket (the dev node answering whatever the
   test injects: any result, a broken envelope, bytes that are not JSON): each
   call returns or raises a named `LightningError`.
3. The listener's crediting path: `listinvoices` and `waitanyinvoice` answering
   nonsense, including "paid" claims about one of our invoices without a valid
   proof, credit nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lightning import cln_parse
from lightning.errors import LightningError, MalformedReply
from lightning.port import InvoiceStatus
from marketplace.db import invoices
from marketplace.db.engine import Database
from marketplace.db.tables import journal_entries
from marketplace.workers.listener import PaymentListener
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import make_user
from tests.lightning.schema import method_schema, transcripts
from tests.lightning.schema_strategies import any_json, from_schema

HASH = hashlib.sha256(b"fuzz").hexdigest()
PARSERS: dict[str, Callable[[Any], Any]] = {
    "invoice": lambda r: cln_parse.created_invoice("label", r),
    "listinvoices": lambda r: (cln_parse.invoices(r), _paged(r)),
    "waitanyinvoice": lambda r: cln_parse.paid_after(r, 0),
    "xpay": cln_parse.payment_result,
    "pay": cln_parse.payment_result,
    "listpays": lambda r: cln_parse.payment_status(HASH, r),
    "getinfo": cln_parse.node_info,
    "listpeerchannels": cln_parse.channels,
    "listfunds": cln_parse.funds,
    "decode": cln_parse.decoded,
    "fundchannel": cln_parse.channel_opened,
    "close": cln_parse.channel_closed,
    "wait": lambda r: cln_parse.wait_value(r, 1),
}
def _paged(reply: Any) -> Any:
    try:  # the same reply read as a page by `updated` (items before the start are refused)
        return cln_parse.invoices(reply, updated_from=3)
    except MalformedReply:
        return None


RECORDED = [(t["method"], t["response"]) for t in transcripts() if "response" in t and t["method"] in PARSERS]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parsed_or_malformed(method: str, reply: Any) -> Any:
    try:
        return PARSERS[method](reply)
    except MalformedReply as exc:
        assert exc.message
        return None


@st.composite
def mutated_recording(draw: st.DrawFn) -> tuple[str, Any]:
    method, reply = draw(st.sampled_from(RECORDED))
    reply = json.loads(json.dumps(reply))
    for _ in range(draw(st.integers(1, 3))):
        node = reply
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            if draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(any_json)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(any_json)
    return method, reply


@FUZZ
@given(st.sampled_from(sorted(PARSERS)).flatmap(
    lambda m: st.tuples(st.just(m), from_schema(method_schema(m)["response"]))))
def test_replies_within_the_schemas_parse_or_are_malformed(case: tuple[str, Any]) -> None:
    method, reply = case
    value = _parsed_or_malformed(method, reply)
    if value is not None and method == "waitanyinvoice":
        assert value.status is InvoiceStatus.PAID and cln_parse.preimage_matches(value.payment_preimage,
                                                                                value.payment_hash)


@FUZZ
@given(mutated_recording())
def test_recorded_replies_with_a_field_removed_or_replaced_parse_or_are_malformed(case: tuple[str, Any]) -> None:
    _parsed_or_malformed(*case)


@FUZZ
@given(st.sampled_from(sorted(PARSERS)), any_json)
def test_any_json_parses_or_is_malformed(method: str, reply: Any) -> None:
    _parsed_or_malformed(method, reply)


def test_the_recorded_replies_themselves_parse() -> None:
    for method, reply in RECORDED:
        if method == "listpays":
            continue  # recorded for other hashes than HASH
        assert _parsed_or_malformed(method, reply) is not None, method


def test_a_paid_invoice_without_its_proof_is_malformed() -> None:
    paid = next(r["invoices"][0] for m, r in RECORDED if m == "listinvoices" and r["invoices"]
                and r["invoices"][0]["status"] == "paid")
    assert cln_parse.invoice(paid).status is InvoiceStatus.PAID
    for broken in ({**paid, "payment_preimage": os.urandom(32).hex()},
                   {k: v for k, v in paid.items() if k != "pay_index"},
                   {**paid, "amount_received_msat": paid.get("amount_msat", 2) - 1} if "amount_msat" in paid else None,
                   {**paid, "pay_index": 2**63}):
        if broken is not None:
            with pytest.raises(MalformedReply):
                cln_parse.invoice(broken)


# -- through the socket ----------------------------------------------------

CALLS: dict[str, Callable[[Any], Any]] = {
    "getinfo": lambda a: a.node_info(),
    "invoice": lambda a: a.create_invoice(1000, f"fz-{os.urandom(4).hex()}", "fuzz", 60),
    "listinvoices": lambda a: a.list_paid_since(1, 10),
    "waitanyinvoice": lambda a: a.wait_any_paid(0, 0),
    "listpays": lambda a: a.payment_status(HASH),
    "listpeerchannels": lambda a: a.channels(),
    "listfunds": lambda a: a.funds(),
    "decode": lambda a: a.decode("lnbcrt1"),
}

nonsense = st.one_of(
    st.fixed_dictionaries({"result": any_json}),
    st.fixed_dictionaries({"envelope": any_json}),
    st.fixed_dictionaries({"envelope": st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": st.just("<echo>"),
                                                              "error": any_json})}),
    st.fixed_dictionaries({"raw": st.text(max_size=60).map(lambda t: t.replace("\n\n", "\n") + "\n\n")}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CALLS)), nonsense)
def test_the_adapter_answers_nonsense_with_a_named_error(devnode_inject: DevNode, method: str,
                                                         reply: dict[str, Any]) -> None:
    devnode_inject.inject_reply("marketplace", method, **reply)
    adapter = devnode_inject.adapter("marketplace")
    try:
        anyio.run(lambda: CALLS[method](adapter))
    except LightningError as exc:
        assert type(exc) is not LightningError and exc.message


# -- the crediting path ----------------------------------------------------

def _claims_ours_paid(label: str, payment_hash: str) -> st.SearchStrategy[dict[str, Any]]:
    """A schema-shaped 'paid' record of our invoice, with a made-up proof."""
    return st.fixed_dictionaries({
        "label": st.just(label), "payment_hash": st.just(payment_hash), "status": st.just("paid"),
        "expires_at": st.integers(0, 2**40), "created_index": st.integers(1, 10**6),
        "updated_index": st.integers(1, 10**6), "pay_index": st.integers(1, 10**6),
        "amount_received_msat": st.integers(0, 10**15), "paid_at": st.integers(0, 2**40),
        "payment_preimage": st.text("0123456789abcdef", min_size=64, max_size=64),
    }, optional={"amount_msat": st.integers(0, 10**12), "bolt11": st.text(max_size=10)})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_nonsense_from_the_node_credits_nothing(database: Database, devnode_inject: DevNode,
                                                data: st.DataObject) -> None:
    ours = database.read(lambda c: invoices.open_invoices(c, 0))
    if not ours:
        user_id = database.run(make_user)[0]
        row = database.run(lambda c: invoices.record_new(c, "deposit", user_id, 7_000_000, "fuzz"))
        made = anyio.run(devnode_inject.adapter("marketplace").create_invoice, 7_000_000, row.label, "fuzz", 3600)
        database.run(lambda c: invoices.mark_created(c, row.id, made))
        ours = database.read(lambda c: invoices.open_invoices(c, 0))
    row = ours[0]
    assert row.payment_hash is not None
    claim = _claims_ours_paid(row.label, row.payment_hash)
    method = data.draw(st.sampled_from(["listinvoices", "waitanyinvoice"]))
    if method == "listinvoices":
        page = st.lists(st.one_of(claim, from_schema(method_schema("listinvoices")["response"]["properties"]
                                                     ["invoices"]["items"])), min_size=1, max_size=4)
        reply = data.draw(st.one_of(page.map(lambda items: {"result": {"invoices": items}}), nonsense))
    else:
        reply = data.draw(st.one_of(claim.map(lambda c: {"result": c}), nonsense))
    devnode_inject.inject_reply("marketplace", method, **reply)
    listener = PaymentListener(database, devnode_inject.adapter("marketplace"), wait_s=0)
    try:
        anyio.run(listener.drain if method == "listinvoices" else listener.wait_once)
    except LightningError as exc:
        assert type(exc) is not LightningError
    credits = database.read(lambda c: c.execute(select(func.count()).select_from(journal_entries)
                                                .where(journal_entries.c.kind == "deposit")).scalar_one())
    assert credits == 0
    assert database.read(lambda c: invoices.get(c, row.id)).status == "unpaid"
