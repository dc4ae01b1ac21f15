"""An active loan made through the real services and paid out through the dev node, for the reach tests."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import anyio
from sqlalchemy import Connection

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import accounts
from marketplace.services import loans as loan_service
from marketplace.services.lightning_calls import NodeFacts
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import deposit_entry, make_user
from tests.web.support import PASSWORD

BORROWER_NAME = "Rosa Quispe Mamani"
STORY = "Rosa's tailoring stall by the bus station in El Alto: a second sewing machine."
LOAN_MSAT = 60_000_000


@dataclass(frozen=True)
class ActiveLoan:
    loan_id: int
    borrower_id: int
    borrower_email: str
    lender_ids: list[int]


def active_loan(database: Database, settings: Settings, devnode: DevNode, tag: str) -> ActiveLoan:
    """A borrower who can sign in (password PASSWORD), three lenders, a 60,000 sat weekly loan, disbursed."""
    email = f"{tag}-borrower@example.org"
    borrower = accounts.create_user(database, settings, email, PASSWORD, "borrower", BORROWER_NAME)

    def lenders(conn: Connection) -> list[int]:
        ids = []
        for _ in range(3):
            lender, accts = make_user(conn, "lender")
            ledger.post(conn, [deposit_entry(conn, accts[AccountKind.USER_AVAILABLE], 30_000_000)])
            ids.append(lender)
        return ids

    lender_ids = database.run(lenders)
    terms = LoanTerms(LOAN_MSAT, 2400, 4, Frequency.WEEKLY, Method.ANNUITY)
    loan_id = loan_service.request_loan(database, settings, borrower, terms, "business", STORY)
    for lender in lender_ids:
        loan_service.pledge(database, settings, lender, loan_id, 20_000_000)
    port, wallet = devnode.adapter("marketplace"), devnode.adapter("wallet")
    target = anyio.run(wallet.create_invoice, LOAN_MSAT, f"principal-{time.time_ns()}", "loan", 600)
    paid = anyio.run(loan_service.disburse, database, port, NodeFacts(port), settings, borrower, loan_id,
                     target.bolt11)
    assert paid.status == "succeeded", paid.error
    return ActiveLoan(loan_id, borrower, email, lender_ids)


_CARD_ADDRESS = re.compile(r'class="repay-card-address">(.*?)</p>', re.S)


def address_on_card(html: str) -> str:
    """The Lightning Address as the card prints it (its two halves are spans, so it breaks only at the @)."""
    found = _CARD_ADDRESS.search(html)
    assert found is not None, "the card shows no Lightning Address"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()
