"""kill -9 after an outgoing payment's hold is committed but before the node is asked to pay.

The node has no record of the payment. A real `microlend serve` process
(fault injection: `withdrawal:after-hold`, `disbursement:after-hold`) dies at
exactly that point; after a restart the reconciler hands the same invoice to
the node again (a payment is keyed by its hash; the node pays a hash at most
once), so the payment completes within seconds instead of the money being
held until the invoice expires (a week by CLN's default).
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import httpx
from sqlalchemy import func, select

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import journal_entries, outgoing_payments
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.services.accounts import create_user
from marketplace.services.api_tokens import create_token
from marketplace.services.deposits import create_deposit_invoice
from marketplace.settings import Settings
from tests.crash.support import AppProcess, wait_for
from tests.fixtures.devnode import DevNode

DEPOSIT_MSAT = 300_000_000
PASSWORD = "correct horse battery"
FAST = {"MICROLEND_RECONCILE_EVERY_S": "1", "MICROLEND_RESUBMIT_AFTER_S": "1", "MICROLEND_PAY_RETRY_FOR_S": "5"}


def _settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, secret_key="crash-test-secret",
                    argon2_time_cost=1, argon2_memory_kib=8192)


def _outgoing(database: Database) -> list[Any]:
    return database.read(lambda c: list(c.execute(select(outgoing_payments).order_by(outgoing_payments.c.id))))


def _count_key(database: Database, key: str) -> int:
    return database.read(lambda c: int(c.execute(select(func.count()).select_from(journal_entries)
                                                 .where(journal_entries.c.idempotency_key == key)).scalar_one()))


def _fund(database: Database, settings: Settings, devnode: DevNode, app: AppProcess, user_id: int) -> None:
    """A real deposit: an invoice from the service, paid by the wallet, credited by the app's listener."""
    row = anyio.run(create_deposit_invoice, database, devnode.adapter("marketplace"), settings, user_id,
                    DEPOSIT_MSAT)
    assert row.bolt11 is not None
    anyio.run(devnode.adapter("wallet").pay, row.bolt11, None, 10_000, 10)
    wait_for(lambda: database.read(lambda c: ledger.user_balances(c, user_id))[AccountKind.USER_AVAILABLE]
             == DEPOSIT_MSAT, 60, "the deposit credit", app)


def _wallet_paid(devnode: DevNode, payment_hash: str) -> int:
    found = devnode.rpc("wallet").call("listinvoices", {"payment_hash": payment_hash})["invoices"]
    return sum(1 for i in found if i["status"] == "paid")


def test_withdrawal_killed_between_hold_and_node_is_paid_once_after_restart(
        tmp_path: Path, db_url: str, devnode: DevNode) -> None:
    settings = _settings(tmp_path, db_url)
    database = Database(db_url)
    user_id = create_user(database, settings, "lea@example.org", PASSWORD, "lender")
    token = create_token(database, user_id, "crash").token
    app = AppProcess(tmp_path, db_url, devnode.rpc_path("marketplace"), env=FAST)
    app.start()
    app.wait_ready()
    _fund(database, settings, devnode, app, user_id)
    app.kill9()

    amount_msat = 50_000_000
    invoice = devnode.rpc("wallet").call("invoice", {"amount_msat": amount_msat, "label": "lea-out",
                                                     "description": "withdrawal", "expiry": 7 * 24 * 3600})
    app.start(fault="withdrawal:after-hold")
    app.wait_ready()
    try:
        httpx.post(app.base_url + "/api/v1/withdrawals", json={"bolt11": invoice["bolt11"]},
                   headers={"Authorization": f"Bearer {token}"}, timeout=20)
        raise AssertionError("the server answered; it should have died after the hold")
    except httpx.HTTPError:
        pass
    assert app.wait_exit() == -signal.SIGKILL
    assert "fault injection: SIGKILL at withdrawal:after-hold" in app.log()
    # Killed exactly there: the hold is committed, the node never heard of the payment.
    [row] = _outgoing(database)
    assert row.status == "pending" and row.payment_hash == invoice["payment_hash"]
    held = database.read(lambda c: ledger.user_balances(c, user_id))
    assert held[AccountKind.USER_PENDING_OUT] == amount_msat + row.fee_reserve_msat
    assert devnode.rpc("marketplace").call("listpays", {"payment_hash": row.payment_hash})["pays"] == []

    app.start()
    wait_for(lambda: _outgoing(database)[0].status == "succeeded", 60, "the withdrawal to be paid", app)
    assert "handing payment" in app.log()
    after = database.read(lambda c: ledger.user_balances(c, user_id))
    assert after[AccountKind.USER_PENDING_OUT] == 0
    assert after[AccountKind.USER_AVAILABLE] == DEPOSIT_MSAT - amount_msat  # the dev node routes directly: no fee
    assert _wallet_paid(devnode, row.payment_hash) == 1
    assert _count_key(database, f"settle:{row.payment_hash}") == 1
    assert _count_key(database, f"release:{row.payment_hash}") == 0

    # The same invoice again: refused (it was paid), nothing held twice.
    again = httpx.post(app.base_url + "/api/v1/withdrawals", json={"bolt11": invoice["bolt11"]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert again.status_code == 409 and "succeeded" in again.text
    app.kill9()
    assert database.read(verify_ledger).ok
    database.dispose()


def _sign_in(client: httpx.Client, email: str) -> None:
    import re

    token = re.search(r'name="csrf_token" value="([^"]*)"', client.get("/signin").text)
    assert token is not None
    signed = client.post("/signin", data={"csrf_token": token.group(1), "email": email, "password": PASSWORD})
    assert signed.status_code in (200, 303), signed.text


def test_disbursement_killed_between_hold_and_node_is_paid_once_after_restart(
        tmp_path: Path, db_url: str, devnode: DevNode) -> None:
    import re

    settings = _settings(tmp_path, db_url)
    database = Database(db_url)
    lender = create_user(database, settings, "lea@example.org", PASSWORD, "lender")
    borrower = create_user(database, settings, "bea@example.org", PASSWORD, "borrower")
    lender_token = create_token(database, lender, "crash").token
    borrower_token = create_token(database, borrower, "crash").token
    app = AppProcess(tmp_path, db_url, devnode.rpc_path("marketplace"), env=FAST)
    app.start()
    app.wait_ready()
    _fund(database, settings, devnode, app, lender)

    api = httpx.Client(base_url=app.base_url + "/api/v1", timeout=20)
    made = api.post("/loans", headers={"Authorization": f"Bearer {borrower_token}"}, json={
        "amount_sat": 50_000, "rate_bps": 1200, "count": 4, "frequency": "weekly", "purpose": "business",
        "story": "A stall at the market needs a second fridge for the summer."})
    assert made.status_code == 201, made.text
    loan_id = made.json()["loan"]["id"]
    for _ in range(2):  # two notes of one lender
        note = api.post(f"/loans/{loan_id}/notes", headers={"Authorization": f"Bearer {lender_token}"},
                        json={"amount_sat": 25_000})
        assert note.status_code == 201, note.text
    assert note.json()["loan"]["status"] == "funded"
    app.kill9()

    invoice = devnode.rpc("wallet").call("invoice", {"amount_msat": 50_000_000, "label": "bea-loan",
                                                     "description": "my loan", "expiry": 7 * 24 * 3600})
    app.start(fault="disbursement:after-hold")
    app.wait_ready()
    web = httpx.Client(base_url=app.base_url, timeout=20, follow_redirects=False)
    _sign_in(web, "bea@example.org")
    page = web.get(f"/loans/{loan_id}")
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert csrf is not None
    try:
        web.post(f"/loans/{loan_id}/disburse", data={"csrf_token": csrf.group(1), "bolt11": invoice["bolt11"]})
        raise AssertionError("the server answered; it should have died after the hold")
    except httpx.HTTPError:
        pass
    assert app.wait_exit() == -signal.SIGKILL
    [row] = _outgoing(database)
    assert row.status == "pending" and row.purpose == "disbursement"
    assert devnode.rpc("marketplace").call("listpays", {"payment_hash": row.payment_hash})["pays"] == []

    app.start()
    wait_for(lambda: _outgoing(database)[0].status == "succeeded", 60, "the disbursement to be paid", app)
    loan = api.get(f"/loans/{loan_id}", headers={"Authorization": f"Bearer {borrower_token}"}).json()["loan"]
    assert loan["status"] == "active"
    assert _wallet_paid(devnode, row.payment_hash) == 1
    assert _count_key(database, f"settle:{row.payment_hash}") == 1
    assert _count_key(database, f"release:{row.payment_hash}") == 0
    app.kill9()
    assert database.read(verify_ledger).ok
    database.dispose()
