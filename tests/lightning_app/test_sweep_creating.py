"""Invoice rows left in 'creating' (the app died before or while asking the node) are settled once.

Found by label on the node -> unpaid with its BOLT11; not found -> failed. Either
way no later start asks the node about them again.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import anyio
from sqlalchemy import update

from marketplace.db import invoices
from marketplace.db.engine import Database
from marketplace.db.tables import invoices as invoices_table
from marketplace.workers.listener import CREATING_GRACE_S, PaymentListener
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import make_user


def _creating(database: Database, user_id: int, age_s: int) -> invoices.InvoiceRow:
    row = database.run(lambda c: invoices.record_new(c, "deposit", user_id, 5_000_000, "Microlend deposit"))
    moment = datetime.now(timezone.utc) - timedelta(seconds=age_s)
    database.run(lambda c: c.execute(update(invoices_table).where(invoices_table.c.id == row.id)
                                     .values(created_at=moment)))
    return row


def _lookups(devnode: DevNode, label: str) -> int:
    return sum(1 for e in devnode.recorded()
               if e["method"] == "listinvoices" and (e["params"] or {}).get("label") == label)


def test_creating_rows_are_settled_by_the_sweep_once(database: Database, devnode: DevNode) -> None:
    user_id = database.run(make_user)[0]
    never_asked = _creating(database, user_id, age_s=CREATING_GRACE_S + 5)
    answer_lost = _creating(database, user_id, age_s=CREATING_GRACE_S + 5)
    just_now = _creating(database, user_id, age_s=0)  # may belong to a call still on its way
    port = devnode.adapter("marketplace")
    made = anyio.run(port.create_invoice, 5_000_000, answer_lost.label, "Microlend deposit", 3600)

    listener = PaymentListener(database, port)
    anyio.run(listener.sweep)
    assert database.read(lambda c: invoices.get(c, never_asked.id)).status == "failed"
    lost = database.read(lambda c: invoices.get(c, answer_lost.id))
    assert lost.status == "unpaid" and lost.bolt11 == made.bolt11 and lost.payment_hash == made.payment_hash
    assert database.read(lambda c: invoices.get(c, just_now.id)).status == "creating"

    anyio.run(listener.sweep)  # the next start
    assert _lookups(devnode, never_asked.label) == 1
    assert _lookups(devnode, answer_lost.label) == 2  # unpaid: still watched until paid or expired

    # A slow call that finishes after the sweep gave up still gets its invoice stored.
    late = _creating(database, user_id, age_s=CREATING_GRACE_S + 5)
    anyio.run(listener.sweep)
    assert database.read(lambda c: invoices.get(c, late.id)).status == "failed"
    created = anyio.run(port.create_invoice, 5_000_000, late.label, "Microlend deposit", 3600)
    revived = database.run(lambda c: invoices.mark_created(c, late.id, created))
    assert revived.status == "unpaid" and revived.bolt11 == created.bolt11
