"""Helpers for the real-node tier: wallet-side calls on the real network and reading the ledger."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from lightning.regtest import RegtestNetwork
from marketplace.db.engine import Database
from marketplace.db.tables import invoices, outgoing_payments
from marketplace.domain.journal import AccountKind
from tests.lightning_app.test_deposit_withdraw import balances, deposit, user_id_of, wait_for
from tests.web.support import TestClient, csrf_token, sign_up

__all__ = ["balances", "deposit", "user_id_of", "wait_for"]


def node_invoice(network: RegtestNetwork, node: str, amount_msat: int, description: str = "to my wallet") -> str:
    """A BOLT11 made by one of the network's nodes (a lender's or borrower's own wallet)."""
    made = network.rpc(node).invoice(amount_msat, f"{node}-{time.time_ns()}", description, 600)
    bolt11: str = made["bolt11"]
    return bolt11


def invoice_status(network: RegtestNetwork, node: str, bolt11: str) -> str:
    found = network.rpc(node).listinvoices(invstring=bolt11)["invoices"]
    return str(found[0]["status"]) if found else "missing"


def available(database: Database, user_id: int) -> int:
    return balances(database, user_id)[AccountKind.USER_AVAILABLE]


def funded_user(client: TestClient, database: Database, email: str, amount_sat: int, role: str = "lender") -> int:
    """A user whose deposit the wallet node paid with xpay (the demo wallet button), credited by the listener."""
    assert sign_up(client, email, role=role).status_code == 303
    user_id = user_id_of(database, email)
    invoice_id = deposit(client, str(amount_sat))
    paid = client.post(f"/demo-wallet/pay/{invoice_id}", data={"csrf_token": csrf_token(client, "/deposit")},
                       follow_redirects=False)
    assert paid.status_code == 303, paid.text
    wait_for(lambda: available(database, user_id) == amount_sat * 1000, 30)
    return user_id


def withdraw(client: TestClient, bolt11: str, amount_sat: str = "") -> Any:
    return client.post("/withdraw", data={"csrf_token": csrf_token(client, "/withdraw"), "bolt11": bolt11,
                                          "amount_sat": amount_sat})


def outgoing_row(database: Database, payment_hash: str) -> Any:
    return database.read(lambda c: c.execute(select(outgoing_payments).where(
        outgoing_payments.c.payment_hash == payment_hash)).one())


def paid_invoice_count(database: Database, purpose: str) -> int:
    return database.read(lambda c: int(c.execute(select(func.count()).select_from(invoices).where(
        invoices.c.purpose == purpose, invoices.c.status == "paid")).scalar_one()))


def bolt11_of(database: Database, invoice_id: int) -> str:
    return str(database.read(lambda c: c.execute(select(invoices.c.bolt11).where(
        invoices.c.id == invoice_id)).scalar_one()))
