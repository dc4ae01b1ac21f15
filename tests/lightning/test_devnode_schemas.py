"""Every dev node reply validates against CLN's response schema, every request
the adapter sends validates against the request schema, and where a real
node's exchange was recorded, the dev node's answer has the same shape."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyln.client import LightningRpc, RpcError

from lightning.cln import CMD_PREFIX
from lightning.devnode.methods import METHODS
from tests.fixtures.devnode import DevNode
from tests.lightning.helpers import label, run
from tests.lightning.schema import (
    TRANSCRIPT_DIR,
    has_schema,
    json_shape,
    request_errors,
    response_errors,
)

# Parts of a real node's reply that a simulation has no truth for (PSBTs,
# closing scripts, connection history); everything else must match.
ADAPTER_METHODS = {
    "getinfo", "invoice", "waitanyinvoice", "listinvoices", "wait", "xpay", "listpays", "decode",
    "listpeerchannels", "listfunds", "connect", "fundchannel", "close",
}
NOT_SIMULATED = {"psbt", "withheld", "close_to_addr", "close_to", "last_stable_connection"}


def _call(rpc: LightningRpc, method: str, params: Any = None) -> Any:
    try:
        return rpc.call(method, params)
    except RpcError as exc:
        return {"__error__": exc.error}


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevNode, dict[str, Any]]]:
    """One pass through every method, through the adapter where it has the method."""
    node = DevNode(tmp_path_factory.mktemp("tour"), extra_nodes=("carol",))
    node.start()
    m, w, c = node.rpc("marketplace"), node.rpc("wallet"), node.rpc("carol")
    am, aw = node.adapter("marketplace"), node.adapter("wallet")
    cases: dict[str, Any] = {}
    try:
        cases["getinfo"] = m.getinfo()
        numeric = run(am.create_invoice, 50_000_000, "inv-numeric-1", "coffee for two", 3600)
        cases["invoice_numeric"] = _call(m, "invoice", {"amount_msat": 1000, "label": label(), "description": "x", "expiry": 3600})
        cases["invoice_any"] = _call(m, "invoice", {"amount_msat": "any", "label": "inv-any-1", "description": "any"})
        cases["invoice_sat_string"] = _call(m, "invoice", {"amount_msat": "10000sat", "label": label(), "description": "sat"})
        cases["invoice_positional"] = _call(m, "invoice", [55000, label(), "positional"])
        cases["invoice_preimage"] = _call(m, "invoice", {"amount_msat": 44000, "label": "inv-preimage-1", "description": "p", "preimage": "00" * 31 + "01", "cltv": 10})
        cases["invoice_deschashonly"] = _call(m, "invoice", {"amount_msat": 21000, "label": label(), "description": "long", "deschashonly": True})
        cases["invoice_dup_label"] = _call(m, "invoice", {"amount_msat": 1, "label": "inv-numeric-1", "description": "dup"})
        cases["invoice_dup_preimage"] = _call(m, "invoice", {"amount_msat": 1000, "label": label(), "description": "dup", "preimage": "00" * 31 + "01"})
        cases["invoice_missing_description"] = _call(m, "invoice", {"amount_msat": 1000, "label": label()})
        cases["invoice_negative"] = _call(m, "invoice", {"amount_msat": -5, "label": label(), "description": "neg"})
        cases["invoice_bad_amount"] = _call(m, "invoice", {"amount_msat": "lots", "label": label(), "description": "bad"})
        cases["waitanyinvoice_timeout"] = _call(m, "waitanyinvoice", {"lastpay_index": 0, "timeout": 0})
        cases["decode_numeric"] = run(am.decode, numeric.bolt11) and _call(w, "decode", {"string": numeric.bolt11})
        cases["decode_any"] = _call(w, "decode", {"string": cases["invoice_any"]["bolt11"]})
        cases["decode_deschashonly"] = _call(w, "decode", {"string": cases["invoice_deschashonly"]["bolt11"]})
        cases["decode_garbage"] = _call(w, "decode", {"string": "this-is-not-a-bolt11-string"})
        cases["decode_truncated"] = _call(w, "decode", {"string": numeric.bolt11[:150]})
        cases["decodepay"] = _call(w, "decodepay", {"bolt11": numeric.bolt11})
        cases["listinvoices_hash"] = _call(m, "listinvoices", {"payment_hash": numeric.payment_hash})
        cases["listinvoices_invstring"] = _call(m, "listinvoices", {"invstring": cases["invoice_any"]["bolt11"]})
        run(aw.pay, numeric.bolt11, None, 1000, 30)
        cases["waitanyinvoice_first"] = run(am.wait_any_paid, 0, None) and _call(m, "waitanyinvoice", {"lastpay_index": 0})
        cases["waitinvoice_paid"] = _call(m, "waitinvoice", {"label": "inv-numeric-1"})
        cases["waitinvoice_unknown"] = _call(m, "waitinvoice", {"label": "no-such-label"})
        cases["pay_any"] = _call(w, "pay", {"bolt11": cases["invoice_any"]["bolt11"], "amount_msat": 12345000})
        cases["pay_any_without_amount"] = _call(w, "pay", {"bolt11": cases["invoice_any"]["bolt11"]})
        cases["pay_again"] = _call(w, "pay", {"bolt11": numeric.bolt11})
        cases["pay_preimage"] = _call(w, "pay", {"bolt11": cases["invoice_preimage"]["bolt11"]})
        fixed_label = label("fixed")
        fixed = _call(m, "invoice", {"amount_msat": 10_000_000, "label": fixed_label, "description": "fixed"})
        cases["pay_amount_for_fixed"] = _call(w, "pay", {"bolt11": fixed["bolt11"], "amount_msat": 1000})
        xinv = _call(m, "invoice", {"amount_msat": 77000, "label": "inv-xpay-1", "description": "paid with xpay"})
        cases["xpay_success"] = _call(w, "xpay", {"invstring": xinv["bolt11"]})
        cases["xpay_again"] = _call(w, "xpay", {"invstring": xinv["bolt11"]})
        huge = _call(m, "invoice", {"amount_msat": 10**15, "label": label(), "description": "huge"})
        cases["xpay_capacity"] = _call(w, "xpay", {"invstring": huge["bolt11"]})
        cases["pay_capacity"] = _call(w, "pay", {"bolt11": huge["bolt11"]})
        cases["keysend"] = _call(w, "keysend", {"destination": cases["getinfo"]["id"], "amount_msat": 1234000})
        cases["xkeysend"] = _call(w, "xkeysend", {"destination": cases["getinfo"]["id"], "amount_msat": 2345000})
        via_hub = _call(c, "invoice", {"amount_msat": 88000, "label": label(), "description": "via hub"})
        cases["xpay_via_hub"] = _call(w, "xpay", {"invstring": via_hub["bolt11"], "maxfee": 1000})
        # Made last: on a loaded machine a 1-second invoice made earlier could expire before the
        # first payment and take updated_index 1, which the paged-updates case expects to be paid.
        expiring = _call(m, "invoice", {"amount_msat": 7000, "label": "inv-expiring-1", "description": "e", "expiry": 1})
        time.sleep(2.1)
        cases["waitinvoice_expired"] = _call(m, "waitinvoice", {"label": "inv-expiring-1"})
        cases["xpay_expired"] = _call(w, "xpay", {"invstring": expiring["bolt11"]})
        cases["pay_expired"] = _call(w, "pay", {"bolt11": expiring["bolt11"]})
        cases["listinvoices_all"] = _call(m, "listinvoices", {})
        cases["listinvoices_label_paid"] = run(am.lookup_invoice, "inv-numeric-1") and _call(m, "listinvoices", {"label": "inv-numeric-1"})
        cases["listinvoices_label_expired"] = _call(m, "listinvoices", {"label": "inv-expiring-1"})
        cases["listinvoices_label_unpaid"] = _call(m, "listinvoices", {"label": fixed_label})
        cases["listinvoices_unknown"] = _call(m, "listinvoices", {"label": "nope"})
        cases["listinvoices_created_page"] = run(am.list_invoices, None, 1, 3) and _call(m, "listinvoices", {"index": "created", "start": 1, "limit": 3})
        cases["listinvoices_updated_page"] = run(am.list_paid_since, 1, 5) and _call(m, "listinvoices", {"index": "updated", "start": 1, "limit": 5})
        cases["wait_created"] = _call(m, "wait", {"subsystem": "invoices", "indexname": "created", "nextvalue": 1})
        cases["wait_updated"] = run(am.wait_updated, 1, 5) and _call(m, "wait", {"subsystem": "invoices", "indexname": "updated", "nextvalue": 1})
        cases["wait_sendpays"] = _call(w, "wait", {"subsystem": "sendpays", "indexname": "updated", "nextvalue": 1})
        run(aw.payment_status, numeric.payment_hash)
        cases["listpays_all"] = _call(w, "listpays", {})
        cases["listpays_bolt11"] = _call(w, "listpays", {"bolt11": numeric.bolt11})
        cases["listpays_failed"] = _call(w, "listpays", {"payment_hash": "fe" * 32})
        cases["listsendpays_all"] = _call(w, "listsendpays", {})
        cases["listsendpays_hash"] = _call(w, "listsendpays", {"payment_hash": numeric.payment_hash})
        cases["listsendpays_failed"] = _call(w, "listsendpays", {"payment_hash": "fe" * 32})
        cases["delinvoice_unpaid"] = _call(m, "delinvoice", {"label": fixed_label, "status": "unpaid"})
        cases["delinvoice_paid"] = _call(m, "delinvoice", {"label": "inv-preimage-1", "status": "paid"})
        cases["delinvoice_expired"] = _call(m, "delinvoice", {"label": "inv-expiring-1", "status": "expired"})
        cases["delinvoice_desconly"] = _call(m, "delinvoice", {"label": "inv-any-1", "status": "paid", "desconly": True})
        cases["delinvoice_unknown"] = _call(m, "delinvoice", {"label": "no-such-label", "status": "unpaid"})
        cases["delinvoice_wrong_status"] = _call(m, "delinvoice", {"label": "inv-xpay-1", "status": "unpaid"})
        run(am.channels), run(am.funds)
        cases["listpeerchannels"] = _call(w, "listpeerchannels", {})
        cases["listfunds"] = _call(w, "listfunds", {})
        carol_id = c.getinfo()["id"]
        run(aw.connect, carol_id, "127.0.0.1", 9735)
        cases["connect"] = _call(w, "connect", {"id": carol_id, "host": "127.0.0.1", "port": 9735})
        cases["connect_unknown"] = _call(w, "connect", {"id": "02" + "11" * 32, "host": "127.0.0.1", "port": 9735})
        opened = run(aw.open_channel, carol_id, 1_000_000)
        cases["fundchannel"] = _call(w, "fundchannel", {"id": carol_id, "amount": 500_000})
        cases["fundchannel_too_much"] = _call(w, "fundchannel", {"id": carol_id, "amount": 10**12})
        run(aw.close_channel, opened.channel_id)
        cases["close"] = _call(w, "close", {"id": carol_id})
        cases["listpeerchannels_after_close"] = _call(w, "listpeerchannels", {})
        yield node, cases
    finally:
        node.stop()


def test_every_method_was_exercised(tour: tuple[DevNode, dict[str, Any]]) -> None:
    node, _ = tour
    methods = {e["method"] for e in node.recorded()}
    assert set(METHODS) <= methods


def test_every_reply_validates_against_its_response_schema(tour: tuple[DevNode, dict[str, Any]]) -> None:
    node, _ = tour
    problems = []
    for entry in node.recorded():
        if "response" in entry and has_schema(entry["method"]):
            for error in response_errors(entry["method"], entry["response"]):
                problems.append(f"{entry['method']} {json.dumps(entry['params'])[:80]}: {error}")
    assert problems == []


def test_every_request_the_adapter_sends_validates_against_its_request_schema(
    tour: tuple[DevNode, dict[str, Any]],
) -> None:
    node, _ = tour
    sent = [e for e in node.recorded() if str(e.get("id", "")).startswith(f"{CMD_PREFIX}/")]
    assert {e["method"] for e in sent} >= ADAPTER_METHODS
    problems = []
    for entry in sent:
        for error in request_errors(entry["method"], entry["params"]):
            problems.append(f"{entry['method']} {json.dumps(entry['params'])[:80]}: {error}")
    assert problems == []


def test_every_request_except_deliberately_bad_ones_is_schema_valid(
    tour: tuple[DevNode, dict[str, Any]],
) -> None:
    node, _ = tour
    problems = []
    for entry in node.recorded():
        deliberately_bad = entry.get("error", {}).get("code") in (-32602, -32601)
        if has_schema(entry["method"]) and not deliberately_bad:
            for error in request_errors(entry["method"], entry["params"]):
                problems.append(f"{entry['method']} {json.dumps(entry['params'])[:80]}: {error}")
    assert problems == []


# transcript file -> tour case with the same situation
TRANSCRIPT_CASES = {
    "getinfo_nodeA_with_channel.json": "getinfo",
    "invoice_amount_msat_numeric.json": "invoice_numeric",
    "invoice_amount_any.json": "invoice_any",
    "invoice_amount_string_sat_suffix.json": "invoice_sat_string",
    "invoice_positional_params.json": "invoice_positional",
    "invoice_with_preimage_and_cltv.json": "invoice_preimage",
    "invoice_deschashonly.json": "invoice_deschashonly",
    "invoice_error_duplicate_label.json": "invoice_dup_label",
    "invoice_error_duplicate_preimage.json": "invoice_dup_preimage",
    "invoice_error_missing_description.json": "invoice_missing_description",
    "invoice_error_negative_amount.json": "invoice_negative",
    "invoice_error_bad_amount_string.json": "invoice_bad_amount",
    "waitanyinvoice_error_timeout0_nothing_paid.json": "waitanyinvoice_timeout",
    "waitanyinvoice_lastpay_index_0_after_first_payment.json": "waitanyinvoice_first",
    "waitinvoice_paid_label.json": "waitinvoice_paid",
    "waitinvoice_error_unknown_label.json": "waitinvoice_unknown",
    "waitinvoice_error_expired.json": "waitinvoice_expired",
    "decode_bolt11_numeric.json": "decode_numeric",
    "decode_bolt11_any_amount.json": "decode_any",
    "decode_bolt11_deschashonly.json": "decode_deschashonly",
    "decode_error_garbage.json": "decode_garbage",
    "decode_error_truncated_bolt11.json": "decode_truncated",
    "decodepay_bolt11_legacy.json": "decodepay",
    "pay_success_any_amount_with_amount_msat.json": "pay_any",
    "pay_error_any_amount_without_amount.json": "pay_any_without_amount",
    "pay_already_paid_invoice_again.json": "pay_again",
    "pay_success_preimage_invoice.json": "pay_preimage",
    "pay_error_amount_for_fixed_invoice.json": "pay_amount_for_fixed",
    "pay_error_amount_exceeds_capacity.json": "pay_capacity",
    "pay_error_expired_invoice.json": "pay_expired",
    "xpay_success.json": "xpay_success",
    "xpay_already_paid_again.json": "xpay_again",
    "xpay_error_amount_exceeds_capacity.json": "xpay_capacity",
    "xpay_error_expired_invoice.json": "xpay_expired",
    "keysend_nodeB_to_nodeA.json": "keysend",
    "xkeysend_nodeB_to_nodeA.json": "xkeysend",
    "listinvoices_by_label_paid.json": "listinvoices_label_paid",
    "listinvoices_by_label_expired.json": "listinvoices_label_expired",
    "listinvoices_by_label_unpaid.json": "listinvoices_label_unpaid",
    "listinvoices_by_unknown_label_empty.json": "listinvoices_unknown",
    "listinvoices_by_payment_hash.json": "listinvoices_hash",
    "listinvoices_by_invstring.json": "listinvoices_invstring",
    "listinvoices_paginated_created_start1_limit3.json": "listinvoices_created_page",
    "listinvoices_paginated_updated_start1_limit5.json": "listinvoices_updated_page",
    "wait_invoices_created_nextvalue1_immediate.json": "wait_created",
    "wait_invoices_updated_nextvalue1_immediate.json": "wait_updated",
    "wait_sendpays_updated_nodeB.json": "wait_sendpays",
    "listpays_nodeB_by_bolt11.json": "listpays_bolt11",
    "listpays_nodeB_by_payment_hash_failed.json": "listpays_failed",
    "listsendpays_nodeB_by_payment_hash.json": "listsendpays_hash",
    "listsendpays_nodeB_by_payment_hash_failed.json": "listsendpays_failed",
    "delinvoice_unpaid_ok.json": "delinvoice_unpaid",
    "delinvoice_paid_ok.json": "delinvoice_paid",
    "delinvoice_expired_ok.json": "delinvoice_expired",
    "delinvoice_desconly.json": "delinvoice_desconly",
    "delinvoice_error_unknown_label.json": "delinvoice_unknown",
    "delinvoice_error_wrong_status.json": "delinvoice_wrong_status",
    "listpeerchannels_nodeB_normal.json": "listpeerchannels",
    "listfunds_nodeB_with_channel.json": "listfunds",
    "connect_nodeB_to_nodeA.json": "connect",
    "fundchannel_nodeB_to_nodeA_1000000sat.json": "fundchannel",
    "close_nodeB_mutual.json": "close",
}


def _shape_diff(real: Any, dev: Any, path: str = "") -> list[str]:
    if isinstance(real, dict) and isinstance(dev, dict):
        diffs = []
        for key in sorted(set(real) | set(dev)):
            if key.startswith("warning_") or key in NOT_SIMULATED:
                continue
            if key not in dev:
                diffs.append(f"{path}/{key}: missing from dev node")
            elif key not in real:
                diffs.append(f"{path}/{key}: dev node only")
            else:
                diffs += _shape_diff(real[key], dev[key], f"{path}/{key}")
        return diffs
    if isinstance(real, list) and isinstance(dev, list):
        if real and dev:
            return _shape_diff(real[0], dev[0], path + "[0]")
        return []
    if real != dev and {real, dev} != {"integer", "number"}:
        return [f"{path}: real {real}, dev {dev}"]
    return []


@pytest.mark.parametrize("transcript", sorted(TRANSCRIPT_CASES))
def test_dev_node_answers_like_the_recorded_real_node(
    transcript: str, tour: tuple[DevNode, dict[str, Any]]
) -> None:
    _, cases = tour
    real = json.loads((TRANSCRIPT_DIR / transcript).read_text())
    dev = cases[TRANSCRIPT_CASES[transcript]]
    if "error" in real:
        assert isinstance(dev, dict) and "__error__" in dev, f"dev node answered {dev}"
        assert dev["__error__"]["code"] == real["error"]["code"]
        assert ("data" in dev["__error__"]) == ("data" in real["error"])
        return
    assert not (isinstance(dev, dict) and "__error__" in dev), f"dev node failed: {dev}"
    assert _shape_diff(json_shape(real["response"]), json_shape(dev)) == []
