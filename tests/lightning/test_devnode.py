"""Dev node behaviour beyond the contract: persistence, signals, routing, clocks."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from pyln.client import RpcError

from lightning.errors import NodeNotReached, NodeUnreachable
from tests.fixtures.devnode import DevNode
from tests.lightning.helpers import label, run


def _wallet_to_us(node: DevNode) -> int:
    return sum(c["to_us_msat"] for c in node.rpc("wallet").listpeerchannels()["channels"])


def test_restart_keeps_keys_invoices_indexes_payments_and_balances(devnode: DevNode) -> None:
    m, w = devnode.rpc("marketplace"), devnode.rpc("wallet")
    node_id = m.getinfo()["id"]
    paid = [m.invoice(1000 * (i + 1), label(), "persist")["bolt11"] for i in range(3)]
    unpaid = m.invoice(5000, "still-unpaid", "persist", 3600)
    for bolt11 in paid:
        w.call("xpay", {"invstring": bolt11})
    balance = _wallet_to_us(devnode)
    before = m.listinvoices()["invoices"]

    devnode.restart()

    m, w = devnode.rpc("marketplace"), devnode.rpc("wallet")
    assert m.getinfo()["id"] == node_id
    assert m.listinvoices()["invoices"] == before
    assert _wallet_to_us(devnode) == balance
    assert len(w.listpays()["pays"]) == 3
    assert m.waitanyinvoice(lastpay_index=2)["pay_index"] == 3
    # Indexes continue where they were, never restart at 1.
    created = m.invoice(1000, label(), "after restart")["created_index"]
    assert created == unpaid["created_index"] + 1
    w.call("xpay", {"invstring": unpaid["bolt11"]})
    assert m.waitanyinvoice(lastpay_index=3)["pay_index"] == 4


def test_kill_9_leaves_sockets_that_refuse_and_a_restart_recovers(devnode: DevNode) -> None:
    bolt11 = devnode.rpc("marketplace").invoice(1000, label(), "crash")["bolt11"]
    devnode.kill()
    assert Path(devnode.rpc_path("marketplace")).exists()  # stale, nobody listening
    with pytest.raises(NodeUnreachable):
        run(devnode.adapter("wallet").node_info)
    devnode.start()
    devnode.rpc("wallet").call("xpay", {"invstring": bolt11})
    assert devnode.rpc("marketplace").listinvoices(invstring=bolt11)["invoices"][0]["status"] == "paid"


def test_sigterm_removes_the_sockets(devnode: DevNode) -> None:
    devnode.stop()
    assert not Path(devnode.rpc_path("marketplace")).exists()
    assert not Path(devnode.rpc_path("wallet")).exists()


def test_paying_moves_channel_balances_on_both_sides(devnode: DevNode) -> None:
    m, w = devnode.rpc("marketplace"), devnode.rpc("wallet")
    m_before = m.listpeerchannels()["channels"][0]["to_us_msat"]
    w_before = _wallet_to_us(devnode)
    w.call("xpay", {"invstring": m.invoice(250_000, label(), "move")["bolt11"]})
    assert m.listpeerchannels()["channels"][0]["to_us_msat"] == m_before + 250_000
    assert _wallet_to_us(devnode) == w_before - 250_000
    # ...and the marketplace can pay the wallet back (withdrawals, disbursements).
    m.call("xpay", {"invstring": w.invoice(100_000, label(), "back")["bolt11"]})
    assert _wallet_to_us(devnode) == w_before - 150_000


def test_waitinvoice_blocks_until_paid_and_expiry_bumps_updated_index(devnode: DevNode) -> None:
    m, w = devnode.rpc("marketplace"), devnode.rpc("wallet")
    name = label("block")
    bolt11 = m.invoice(1000, name, "block")["bolt11"]
    threading.Timer(0.2, lambda: w.call("xpay", {"invstring": bolt11})).start()
    started = time.monotonic()
    assert m.waitinvoice(name)["status"] == "paid"
    assert time.monotonic() - started < 3

    updated_before = m.call("wait", {"subsystem": "invoices", "indexname": "updated", "nextvalue": 0})["updated"]
    m.invoice(1000, "soon-expired", "expiry", 1)
    reply = m.call("wait", {"subsystem": "invoices", "indexname": "updated", "nextvalue": updated_before + 1})
    assert reply["updated"] == updated_before + 1
    expired = m.listinvoices(label="soon-expired")["invoices"][0]
    assert expired["status"] == "expired" and expired["updated_index"] == updated_before + 1
    with pytest.raises(RpcError) as caught:
        m.waitinvoice("soon-expired")
    assert caught.value.error["code"] == 903


def test_invoice_of_a_node_not_hosted_is_no_route(devnode: DevNode) -> None:
    from lightning.devnode.issuer import issue

    foreign = issue(
        private_key_hex=os.urandom(32).hex(), currency="bcrt", amount_msat=1000, description="far",
        payment_hash=os.urandom(32).hex(), payment_secret=os.urandom(32).hex(),
        created_at=int(time.time()), expiry_s=600,
    )
    with pytest.raises(RpcError) as caught:
        devnode.rpc("wallet").call("xpay", {"invstring": foreign})
    assert caught.value.error["code"] == 205
    assert devnode.rpc("wallet").listpays()["pays"] == []


def test_extra_nodes_route_through_the_marketplace_with_a_fee(tmp_path: Path) -> None:
    node = DevNode(tmp_path / "dn", extra_nodes=("carol",))
    node.start()
    try:
        carol, w = node.rpc("carol"), node.rpc("wallet")
        bolt11 = carol.invoice(1_000_000, label(), "via hub")["bolt11"]
        with pytest.raises(RpcError) as caught:
            w.call("xpay", {"invstring": bolt11, "maxfee": 0})
        assert caught.value.error["code"] == 205
        reply = w.call("xpay", {"invstring": bolt11, "maxfee": 100})
        assert reply["amount_sent_msat"] - reply["amount_msat"] == 1 + 10  # base 1 + 10 ppm
        assert node.rpc("marketplace").getinfo()["fees_collected_msat"] == 11
    finally:
        node.stop()


def test_unknown_command_and_bad_params_use_cln_codes(devnode: DevNode) -> None:
    m = devnode.rpc("marketplace")
    for method, params, code in [
        ("decodepay", {"bolt11": "lnbcrt1"}, -32601),
        ("invoice", {"amount_msat": 0, "label": "zero", "description": "zero"}, -32602),
        ("invoice", {"amount_msat": 1, "label": "x", "description": "d", "bogus": 1}, -32602),
        ("listinvoices", {"label": "a", "payment_hash": "00" * 32}, -32602),
        ("waitinvoice", {"label": "missing"}, -1),
    ]:
        with pytest.raises(RpcError) as caught:
            m.call(method, params)
        assert caught.value.error["code"] == code, (method, params)


def test_concurrent_payments_never_double_pay_an_invoice(devnode: DevNode) -> None:
    m = devnode.rpc("marketplace")
    bolt11 = m.invoice(10_000, label(), "race")["bolt11"]
    outcomes: list[int] = []

    def attempt() -> None:
        try:
            devnode.rpc("wallet").call("xpay", {"invstring": bolt11})
            outcomes.append(0)
        except RpcError as exc:
            outcomes.append(int(exc.error["code"]))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [0] + [219] * 7
    assert len(devnode.rpc("wallet").listpays(bolt11=bolt11)["pays"]) == 1


def test_adapter_falls_back_to_pay_on_nodes_older_than_v24_11(devnode: DevNode) -> None:
    adapter = devnode.adapter("wallet")
    adapter._version = (24, 8)  # what getinfo would say on an older node
    bolt11 = devnode.rpc("marketplace").invoice(3000, label(), "old node")["bolt11"]
    result = run(adapter.pay, bolt11, None, 1000, 30)
    assert result.amount_msat == 3000
    methods = [e["method"] for e in devnode.recorded() if e["node"] == "wallet"]
    assert "pay" in methods and "xpay" not in methods


def test_a_connection_dropped_mid_call_is_node_unreachable(devnode: DevNode) -> None:
    adapter = devnode.adapter("marketplace")
    outcome: list[BaseException] = []

    def wait_forever() -> None:
        try:
            run(adapter.wait_any_paid, 10**9, None)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    waiter = threading.Thread(target=wait_forever)
    waiter.start()
    time.sleep(0.3)
    devnode.kill()
    waiter.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], NodeUnreachable)
    # It may have reached the node: never the "provably not reached" kind that releases a payment.
    assert not isinstance(outcome[0], NodeNotReached)
