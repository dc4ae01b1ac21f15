"""The contract every Lightning node must honour, through the production adapter.

Runs against the dev node always, and against two real connected lightningd
nodes when MICROLEND_CLN_RPC and MICROLEND_CLN_WALLET_RPC are set.
"""
from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from pyln.client import RpcError

from lightning.errors import (
    AlreadyPaid,
    DuplicateLabel,
    InvoiceExpired,
    NoRoute,
    NodeUnreachable,
)
from lightning.cln import ClnAdapter
from lightning.port import InvoiceStatus, PaymentState
from tests.fixtures.devnode import NodePair
from tests.lightning.helpers import label, run


def test_create_invoice_returns_a_signed_regtest_bolt11(lightning_pair: NodePair) -> None:
    payee = lightning_pair.payee()
    created = run(payee.create_invoice, 12_345_000, label("create"), "a repayment", 600)
    assert created.bolt11.startswith("lnbcrt")
    assert len(created.payment_hash) == 64
    assert created.expires_at >= int(time.time()) + 590
    info = run(payee.node_info)
    decoded = run(payee.decode, created.bolt11)
    assert decoded.payee == info.id
    assert decoded.amount_msat == 12_345_000
    assert decoded.payment_hash == created.payment_hash


def test_duplicate_label_is_refused(lightning_pair: NodePair) -> None:
    payee = lightning_pair.payee()
    name = label("dup")
    run(payee.create_invoice, 1000, name, "first", 600)
    with pytest.raises(DuplicateLabel) as caught:
        run(payee.create_invoice, 1000, name, "second", 600)
    assert caught.value.code == 900


def test_payments_get_increasing_pay_indexes_and_wake_waiters(lightning_pair: NodePair) -> None:
    payee, payer = lightning_pair.payee(), lightning_pair.payer()
    before = run(payee.wait_any_paid, 0, 0)
    start_index = 0
    # Find the current highest pay_index: page through what is already paid.
    while before is not None:
        assert before.pay_index is not None
        start_index = before.pay_index
        before = run(payee.wait_any_paid, start_index, 0)

    invoices = [run(payee.create_invoice, 2000 + i, label("seq"), "seq", 600) for i in range(3)]
    for inv in invoices:
        result = run(payer.pay, inv.bolt11, None, 1000, 30)
        assert hashlib.sha256(bytes.fromhex(result.payment_preimage)).hexdigest() == inv.payment_hash
    seen = []
    cursor = start_index
    for _ in invoices:
        paid = run(payee.wait_any_paid, cursor, 5)
        assert paid is not None and paid.pay_index is not None
        seen.append(paid)
        cursor = paid.pay_index
    assert [p.pay_index for p in seen] == [start_index + 1, start_index + 2, start_index + 3]
    assert [p.payment_hash for p in seen] == [i.payment_hash for i in invoices]
    assert all(p.status is InvoiceStatus.PAID for p in seen)
    assert [p.amount_received_msat for p in seen] == [2000, 2001, 2002]


def test_wait_any_paid_wakes_on_payment_and_times_out_with_904(lightning_pair: NodePair) -> None:
    payee, payer = lightning_pair.payee(), lightning_pair.payer()
    # Drain anything already paid.
    cursor = 0
    while (paid := run(payee.wait_any_paid, cursor, 0)) is not None:
        assert paid.pay_index is not None
        cursor = paid.pay_index
    assert run(payee.wait_any_paid, cursor, 0) is None
    with pytest.raises(RpcError) as caught:
        lightning_pair.payee_rpc().waitanyinvoice(lastpay_index=cursor, timeout=0)
    assert caught.value.error["code"] == 904

    inv = run(payee.create_invoice, 3000, label("wake"), "wake", 600)
    timer = threading.Timer(0.3, lambda: lightning_pair.payer_rpc().call("xpay", {"invstring": inv.bolt11}))
    started = time.monotonic()
    timer.start()
    paid = run(payee.wait_any_paid, cursor, 60)
    elapsed = time.monotonic() - started
    timer.join()
    assert paid is not None and paid.payment_hash == inv.payment_hash
    # Not a speed check: with a 60 s timeout, returning well before it means the payment woke the wait.
    assert elapsed < 30, "waitanyinvoice must wake on payment, not at its timeout"


def test_list_paid_since_pages_by_updated_index(lightning_pair: NodePair) -> None:
    payee, payer = lightning_pair.payee(), lightning_pair.payer()
    invoices = [run(payee.create_invoice, 1000, label("page"), "page", 600) for _ in range(5)]
    for inv in invoices:
        run(payer.pay, inv.bolt11, None, 1000, 30)
    hashes = {i.payment_hash for i in invoices}
    found: list[str] = []
    cursor = 1
    while True:
        page = run(payee.list_paid_since, cursor, 2)
        if not page:
            break
        assert len(page) <= 2
        indexes = [u.updated_index or 0 for u in page]
        assert indexes == sorted(indexes) and all(i >= cursor for i in indexes)
        found += [u.payment_hash for u in page if u.payment_hash in hashes]
        last = page[-1].updated_index
        assert last is not None
        cursor = last + 1
    assert sorted(found) == sorted(hashes)
    # The wait pattern: the index is already past, so `wait` answers at once.
    assert run(payee.wait_updated, 1, 5) is not None
    assert run(payee.wait_updated, cursor + 1000, 0.3) is None


def test_paying_twice_is_already_paid_219(lightning_pair: NodePair) -> None:
    payee, payer = lightning_pair.payee(), lightning_pair.payer()
    inv = run(payee.create_invoice, 4000, label("twice"), "twice", 600)
    run(payer.pay, inv.bolt11, None, 1000, 30)
    with pytest.raises(AlreadyPaid) as caught:
        run(payer.pay, inv.bolt11, None, 1000, 30)
    assert caught.value.code == 219
    status = run(payer.payment_status, inv.payment_hash)
    assert status.state is PaymentState.COMPLETE


def test_expired_invoice_is_207_and_shows_expired(lightning_pair: NodePair) -> None:
    payee, payer = lightning_pair.payee(), lightning_pair.payer()
    name = label("expiring")
    inv = run(payee.create_invoice, 5000, name, "expires", 1)
    time.sleep(2.1)
    with pytest.raises(InvoiceExpired) as caught:
        run(payer.pay, inv.bolt11, None, 1000, 30)
    assert caught.value.code == 207
    looked = run(payee.lookup_invoice, name)
    assert looked is not None and looked.status is InvoiceStatus.EXPIRED
    assert run(payer.payment_status, inv.payment_hash).state is PaymentState.UNKNOWN


def test_amount_beyond_liquidity_is_no_route_205(lightning_pair: NodePair) -> None:
    payee, payer = lightning_pair.payee(), lightning_pair.payer()
    spendable = sum(c.spendable_msat for c in run(payer.channels))
    inv = run(payee.create_invoice, spendable + 1_000_000_000, label("huge"), "huge", 600)
    with pytest.raises(NoRoute) as caught:
        run(payer.pay, inv.bolt11, None, 1000, 5)
    assert caught.value.code == 205


def test_keysend_receipt_is_a_paid_invoice_without_amount(lightning_pair: NodePair) -> None:
    payee = lightning_pair.payee()
    info = run(payee.node_info)
    # xkeysend, not keysend: the tier's nodes run in developer mode, where deprecated commands are off.
    reply = lightning_pair.payer_rpc().call("xkeysend", {"destination": info.id, "amount_msat": 7000})
    payment_hash = hashlib.sha256(bytes.fromhex(reply["payment_preimage"])).hexdigest()
    invoice = lightning_pair.payee_rpc().listinvoices(payment_hash=payment_hash)["invoices"][0]
    assert invoice["label"].startswith("keysend-")
    assert invoice["status"] == "paid" and "amount_msat" not in invoice
    assert invoice["amount_received_msat"] == 7000 and invoice["pay_index"] >= 1


def test_node_info_channels_and_funds(lightning_pair: NodePair) -> None:
    payee, payer = lightning_pair.payee(), lightning_pair.payer()
    info = run(payee.node_info)
    assert info.network == "regtest" and len(info.id) == 66
    payer_id = run(payer.node_info).id
    channels = run(payee.channels)
    assert any(c.peer_id == payer_id and c.usable for c in channels)
    assert all(c.to_us_msat <= c.total_msat for c in channels)
    funds = run(payee.funds)
    assert any(ch.peer_id == payer_id for ch in funds.channels)


def test_missing_socket_is_node_unreachable(tmp_path: Path) -> None:
    adapter = ClnAdapter(str(tmp_path / "nowhere" / "lightning-rpc"))
    with pytest.raises(NodeUnreachable):
        run(adapter.node_info)
    with pytest.raises(NodeUnreachable):
        run(adapter.create_invoice, 1000, "x", "y", 60)
