"""The reconciler's rules for a held payment the node has no record of (its caller died before asking).

- It hands the same invoice to the node again; the node pays a hash at most once.
- A clear failure of that attempt releases the hold only once no earlier attempt
  can still be running at the node (quiet); before that the payment stays unknown.
- A payment whose lock a live caller holds is left alone.
"""
from __future__ import annotations

import hashlib
import os
import time

import anyio

from lightning.devnode.issuer import issue
from marketplace.db import ledger, outgoing
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.domain.journal import AccountKind
from marketplace.settings import Settings
from marketplace.payments.locks import payment_locks
from marketplace.payments.reconciler import reconcile_outgoing
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import deposit_entry, make_user


async def resubmitting(database: Database, port: object, settings: Settings) -> int:
    return await reconcile_outgoing(database, port, settings, resubmit=True)  # type: ignore[arg-type]


def _lender(database: Database, amount_msat: int) -> int:
    user_id, accounts = database.run(make_user)
    database.run(lambda c: ledger.post(c, [deposit_entry(c, accounts[AccountKind.USER_AVAILABLE], amount_msat)]))
    return user_id


def _hold(database: Database, user_id: int, bolt11: str, payment_hash: str, amount_msat: int) -> int:
    return database.run(lambda c: outgoing.hold(c, "withdrawal", user_id, payment_hash, bolt11, amount_msat, 10_000))


def _balances(database: Database, user_id: int) -> dict[AccountKind, int]:
    return database.read(lambda c: ledger.user_balances(c, user_id))


def test_resubmitted_to_the_node_it_is_paid_once(settings: Settings, database: Database, devnode: DevNode) -> None:
    user_id = _lender(database, 9_000_000)
    target = anyio.run(devnode.adapter("wallet").create_invoice, 3_000_000, "r1", "out", 600)
    payment_id = _hold(database, user_id, target.bolt11, target.payment_hash, 3_000_000)
    port = devnode.adapter("marketplace")
    fast = settings.replace(resubmit_after_s=0)

    locks = payment_locks(database)
    assert locks.try_claim(target.payment_hash)  # a live caller is paying it: left alone
    assert anyio.run(resubmitting, database, port, fast) == 0
    assert database.read(lambda c: outgoing.get(c, payment_id)).status == "pending"
    locks.release(target.payment_hash)

    assert anyio.run(resubmitting, database, port, fast) == 1
    from marketplace.db.tables import outgoing_payments

    row = database.read(lambda c: c.execute(outgoing_payments.select().where(outgoing_payments.c.id == payment_id)).one())
    assert row.status == "succeeded" and row.payment_preimage is not None
    assert hashlib.sha256(bytes.fromhex(row.payment_preimage)).hexdigest() == target.payment_hash
    # Paid once: a second pass (and the node, asked directly) find it done; xpay answers 219.
    assert anyio.run(resubmitting, database, port, fast) == 0
    assert len(devnode.rpc("marketplace").call("listpays", {"payment_hash": target.payment_hash})["pays"]) == 1
    assert _balances(database, user_id)[AccountKind.USER_AVAILABLE] == 6_000_000
    assert database.read(verify_ledger).ok


def test_a_failed_resubmission_releases_only_once_nothing_can_still_be_running(
        settings: Settings, database: Database, devnode: DevNode) -> None:
    user_id = _lender(database, 9_000_000)
    # A node the dev node has no route to: xpay answers 205 and records nothing.
    bolt11 = issue(private_key_hex=os.urandom(32).hex(), currency="bcrt", amount_msat=2_000_000,
                   description="elsewhere", payment_hash=hashlib.sha256(os.urandom(32)).hexdigest(),
                   payment_secret=os.urandom(32).hex(), created_at=int(time.time()), expiry_s=600)
    from lightning.invoices import decode_invoice

    payment_hash = decode_invoice(bolt11).payment_hash
    payment_id = _hold(database, user_id, bolt11, payment_hash, 2_000_000)
    port = devnode.adapter("marketplace")

    young = settings.replace(resubmit_after_s=0, pay_retry_for_s=60, pay_quiet_margin_s=60)
    assert anyio.run(resubmitting, database, port, young) == 0
    row = database.read(lambda c: outgoing.get(c, payment_id))
    assert row.status == "unknown" and "could not find" in row.error.lower()
    assert _balances(database, user_id)[AccountKind.USER_PENDING_OUT] == 2_010_000  # still held

    quiet = settings.replace(resubmit_after_s=0, pay_retry_for_s=0, pay_quiet_margin_s=0)
    time.sleep(0.01)
    assert anyio.run(resubmitting, database, port, quiet) == 1
    assert database.read(lambda c: outgoing.get(c, payment_id)).status == "failed"
    assert _balances(database, user_id)[AccountKind.USER_AVAILABLE] == 9_000_000
    assert database.read(verify_ledger).ok


def test_a_lookup_only_pass_never_pays(settings: Settings, database: Database, devnode: DevNode) -> None:
    user_id = _lender(database, 9_000_000)
    target = anyio.run(devnode.adapter("wallet").create_invoice, 1_000_000, "r3", "out", 600)
    payment_id = _hold(database, user_id, target.bolt11, target.payment_hash, 1_000_000)
    port = devnode.adapter("marketplace")
    fast = settings.replace(resubmit_after_s=0)
    assert anyio.run(reconcile_outgoing, database, port, fast) == 0  # the default pass only looks
    assert database.read(lambda c: outgoing.get(c, payment_id)).status == "unknown"
    assert devnode.rpc("marketplace").call("listpays", {"payment_hash": target.payment_hash})["pays"] == []
