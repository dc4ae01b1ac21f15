"""Invoices that commit to a description by hash (`deschashonly`, what LNURL-pay needs), checked against
the real node's recorded exchanges (tests/lightning/cln-transcripts/*deschashonly*.json) and CLN's schemas."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import bolt11
import pytest
from pyln.client import RpcError

from tests.fixtures.devnode import DevNode, NodePair
from tests.lightning.helpers import label, run
from tests.lightning.schema import TRANSCRIPT_DIR, json_shape, request_errors, response_errors


def _transcript(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((TRANSCRIPT_DIR / name).read_text())
    return loaded


def test_the_node_commits_to_the_same_hash_as_the_recorded_core_lightning(lightning_pair: NodePair) -> None:
    """On the dev node and (parity) on the real-node tier's Core Lightning."""
    recorded = _transcript("invoice_deschashonly.json")
    params = dict(recorded["params"])
    params["label"] = label("deschash")
    assert request_errors("invoice", params) == []
    reply = lightning_pair.payee_rpc().call("invoice", params)
    assert response_errors("invoice", reply) == []
    assert set(json_shape(reply)) - {"warning_deadends"} <= set(json_shape(recorded["response"]))
    decoded = lightning_pair.payer_rpc().call("decode", {"string": reply["bolt11"]})
    real_decode = _transcript("decode_bolt11_deschashonly.json")["response"]
    assert response_errors("decode", decoded) == []
    # The same description gives the same `h` as on the real node, and no `d`.
    assert decoded["description_hash"] == real_decode["description_hash"]
    assert decoded["description_hash"] == hashlib.sha256(params["description"].encode()).hexdigest()
    assert "description" not in decoded and "description" not in real_decode
    assert bolt11.decode(reply["bolt11"]).description_hash == decoded["description_hash"]
    # listinvoices still shows the description itself, as on the real node.
    listed = lightning_pair.payee_rpc().call("listinvoices", {"label": params["label"]})["invoices"][0]
    assert listed["description"] == params["description"]


def test_pay_needs_the_description_that_hashes_to_h_and_xpay_does_not(devnode_session: DevNode) -> None:
    marketplace, wallet = devnode_session.adapter("marketplace"), devnode_session.rpc("wallet")
    text = '[["text/plain","Microlend loan 1"]]'
    made = run(lambda: marketplace.create_invoice(21_000, label("dho"), text, 600, deschashonly=True))
    assert run(devnode_session.adapter("wallet").decode, made.bolt11).description_hash == \
        hashlib.sha256(text.encode()).hexdigest()
    for params, message in (({}, "bolt11 uses description_hash, but you did not provide description parameter"),
                            ({"description": text + " "}, "Invalid bolt11: h: does not match description")):
        with pytest.raises(RpcError) as refused:
            wallet.call("pay", {"bolt11": made.bolt11, **params})
        assert refused.value.error["code"] == -32602 and refused.value.error["message"] == message
    recorded = _transcript("pay_deschashonly_invoice.json")
    paid = wallet.call("pay", {"bolt11": made.bolt11, "description": text})
    assert paid["status"] == "complete" and response_errors("pay", paid) == []
    assert set(json_shape(paid)) == set(json_shape(recorded["response"]))
    other = run(lambda: marketplace.create_invoice(22_000, label("dho"), text, 600, deschashonly=True))
    assert wallet.call("xpay", {"invstring": other.bolt11})["amount_msat"] == 22_000
    # An invoice with a plain description needs none, and ignores one given.
    plain = run(lambda: marketplace.create_invoice(23_000, label("plain"), "coffee", 600))
    assert run(devnode_session.adapter("wallet").decode, plain.bolt11).description_hash is None
    assert wallet.call("pay", {"bolt11": plain.bolt11, "description": "anything"})["status"] == "complete"
