"""A payout asked for while the node is down: a clear failure, never money held for the invoice's expiry.

A refused or missing socket means the request never reached the node. The
withdrawal is refused up front (503, nothing held) when a fresh getinfo
fails; if the node goes away between that check and the payment, the hold is
released at once. "Unknown" stays for calls that may have reached the node.
"""
from __future__ import annotations

import time

import anyio

from lightning.cln import ClnAdapter
from lightning.errors import NodeNotReached, NodeUnreachable
from marketplace.app import create_app
from marketplace.db import outgoing
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.services.withdrawals import send_held
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.test_deposit_withdraw import balances, funded_lender, withdraw_form
from tests.web.support import TestClient


def test_a_withdrawal_while_the_node_is_down_is_503_and_holds_nothing(
        settings: Settings, database: Database, devnode: DevNode) -> None:
    node_settings = settings.replace(cln_rpc=devnode.rpc_path("marketplace"), listener_wait_s=1,
                                     reconcile_every_s=1, pay_retry_for_s=5)
    wallet = devnode.adapter("wallet")
    with TestClient(create_app(node_settings, database=database, demo_wallet=wallet)) as client:
        user_id = funded_lender(client, database, "dora@example.org", 50_000)
        first = anyio.run(wallet.create_invoice, 1_000_000, f"ok-{time.time_ns()}", "first", 600)
        assert "Sent." in withdraw_form(client, first.bolt11).text  # type: ignore[attr-defined]
        before = balances(database, user_id)

        target = anyio.run(wallet.create_invoice, 2_000_000, f"down-{time.time_ns()}", "while down", 600)
        devnode.kill()  # the node info the app fetched for the first withdrawal is still cached
        response = withdraw_form(client, target.bolt11)
        assert response.status_code == 503, response.text  # type: ignore[attr-defined]
        assert "cannot be reached" in response.text  # type: ignore[attr-defined]
        assert balances(database, user_id) == before
        assert [r.payment_hash for r in database.read(outgoing.open_payments)] == []

        devnode.start()  # the same invoice is not burnt: it can be paid once the node is back
        assert "Sent." in withdraw_form(client, target.bolt11).text  # type: ignore[attr-defined]
    assert database.read(verify_ledger).ok


def _held_payment(database: Database, user_id: int, bolt11: str, payment_hash: str) -> int:
    return database.run(lambda c: outgoing.hold(c, "withdrawal", user_id, payment_hash, bolt11, 2_000_000, 10_000))


def test_a_refused_connection_after_the_hold_releases_it_at_once(
        settings: Settings, database: Database, devnode: DevNode) -> None:
    from tests.ledger_helpers import deposit_entry, make_user
    from marketplace.db import ledger

    user_id, accounts = database.run(make_user)
    database.run(lambda c: ledger.post(c, [deposit_entry(c, accounts[AccountKind.USER_AVAILABLE], 5_000_000)]))
    target = anyio.run(devnode.adapter("wallet").create_invoice, 2_000_000, f"race-{time.time_ns()}", "race", 600)
    payment_id = _held_payment(database, user_id, target.bolt11, target.payment_hash)
    assert balances(database, user_id)[AccountKind.USER_PENDING_OUT] == 2_010_000

    devnode.kill()  # its socket file stays behind: connect() is refused
    port = ClnAdapter(devnode.rpc_path("marketplace"))
    row = anyio.run(send_held, database, port, settings, payment_id, target.bolt11, None, 10_000)
    assert row.status == "failed" and "could not be reached" in row.error
    after = balances(database, user_id)
    assert after[AccountKind.USER_PENDING_OUT] == 0 and after[AccountKind.USER_AVAILABLE] == 5_000_000
    assert database.read(verify_ledger).ok


def test_refused_and_missing_sockets_are_not_reached_but_a_dropped_call_is_only_unreachable(
        tmp_path: object, devnode: DevNode) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    missing = ClnAdapter(str(tmp_path / "nowhere" / "lightning-rpc"))
    try:
        anyio.run(missing.node_info)
        raise AssertionError("no node there")
    except NodeNotReached:
        pass
    devnode.kill()
    refused = ClnAdapter(devnode.rpc_path("marketplace"))
    try:
        anyio.run(refused.node_info)
        raise AssertionError("a killed node answered")
    except NodeNotReached:
        pass
    assert issubclass(NodeNotReached, NodeUnreachable)  # everything that handled "unreachable" still does
