"""A loan's static pay code: its handle, the LNURL payRequest, and the callback's repayment invoice.

Nobody signs in: the handle is the authority. The invoice comes from the same
repayment-invoice service the pay page uses (recorded before the node is
asked, labelled, limited, credited by the listener and allocated like any
repayment), committing to the metadata's SHA-256 instead of a description.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from lightning.port import LightningPort
from marketplace.db import loans
from marketplace.db.engine import Database
from marketplace.db.invoices import InvoiceRow
from marketplace.db.loans import LoanRow
from marketplace.db.tables import pay_handles
from marketplace.domain import lnurl
from marketplace.domain.errors import Conflict, NotFound
from marketplace.domain.loans.allocation import refresh
from marketplace.services import loans as loan_service
from marketplace.services.lightning_calls import reading
from marketplace.settings import Settings
from marketplace.domain.messages import N_

# Loans that still take repayments, so their pay code answers.
PAYABLE_STATUSES = ("active", "written_off")


@dataclass(frozen=True)
class Site:
    """Where the marketplace is reached: the base of every URL, and the host of every Lightning Address."""

    base_url: str  # scheme://host[:port], no trailing slash
    host: str  # host[:port], the part after the @

    @classmethod
    def of(cls, base_url: str) -> "Site":
        base = base_url.rstrip("/")
        return cls(base, base.split("://", 1)[-1])


@dataclass(frozen=True)
class PayCode:
    """What a card and a loan page show: the handle in its three forms."""

    loan_id: int
    handle: str
    address: str  # loan-7f3k9qx2mz@host
    url: str  # https://host/.well-known/lnurlp/loan-7f3k9qx2mz
    lnurl: str  # LNURL1..., upper case


@dataclass(frozen=True)
class PayRequest:
    callback: str
    min_sendable_msat: int
    max_sendable_msat: int
    metadata: str

    def as_json(self) -> dict[str, object]:
        return {"tag": "payRequest", "callback": self.callback, "minSendable": self.min_sendable_msat,
                "maxSendable": self.max_sendable_msat, "metadata": self.metadata}


def pay_code(site: Site, loan_id: int, handle: str) -> PayCode:
    url = lnurl.pay_request_url(site.base_url, handle)
    return PayCode(loan_id, handle, lnurl.lightning_address(handle, site.host), url, lnurl.encode_lnurl(url))


def handle_of(database: Database, loan_id: int) -> str:
    """The loan's handle, made the first time it is asked for (two at once: one wins, both get it)."""
    found = database.read(lambda c: _stored_handle(c, loan_id))
    if found is not None:
        return found
    try:
        return database.run(lambda c: _make_handle(c, loan_id))
    except IntegrityError:
        # Another request made it (same loan) or, once in 2^52, drew the same handle: read what is there.
        found = database.read(lambda c: _stored_handle(c, loan_id))
        if found is None:
            raise
        return found


def _stored_handle(conn: Connection, loan_id: int) -> str | None:
    found = conn.execute(select(pay_handles.c.handle).where(pay_handles.c.loan_id == loan_id)).scalar()
    return None if found is None else str(found)


def _make_handle(conn: Connection, loan_id: int) -> str:
    existing = _stored_handle(conn, loan_id)
    if existing is not None:
        return existing
    handle = lnurl.new_handle()
    conn.execute(insert(pay_handles).values(loan_id=loan_id, handle=handle, created_at=datetime.now(timezone.utc)))
    return handle


def _loan_by_handle(conn: Connection, name: str) -> LoanRow:
    handle = lnurl.check_handle(name)
    loan_id = conn.execute(select(pay_handles.c.loan_id).where(pay_handles.c.handle == handle)).scalar()
    if loan_id is None:
        raise NotFound(N_("There is no loan with this pay code."))
    return loans.get_loan(conn, int(loan_id))


def due_facts(conn: Connection, name: str, as_of: date) -> tuple[LoanRow, lnurl.DueFacts]:
    """The loan a handle names and what it owes today; Conflict once it takes no repayments."""
    loan = _loan_by_handle(conn, name)
    state = loans.loan_states(conn, [loan]).get(loan.id)
    if loan.status not in PAYABLE_STATUSES or state is None:
        raise Conflict(N_("This loan takes no repayments: it is fully repaid.") if loan.status == "repaid"
                       else N_("This loan takes no repayments."))
    payoff = state.payoff_msat(as_of)
    if payoff == 0:
        raise Conflict(N_("Nothing is owed on this loan."))
    # As the loan page shows it: installments now due frozen, interest since on the rest.
    return loan, lnurl.DueFacts(loan.id, refresh(state, as_of).next_due(as_of), payoff)


def _metadata(site: Site, handle: str, facts: lnurl.DueFacts) -> str:
    return lnurl.metadata(facts.loan_id, lnurl.lightning_address(handle, site.host))


async def pay_request(database: Database, site: Site, name: str, today: date | None = None) -> PayRequest:
    """LUD-06's first answer: where to ask for the invoice, the bounds, and the metadata."""
    as_of = today or loan_service.utc_today()
    _, facts = await reading(database, lambda c: due_facts(c, name, as_of))
    handle = lnurl.check_handle(name)
    low, high = lnurl.sendable(facts.payoff_msat)
    return PayRequest(lnurl.callback_url(site.base_url, handle), low, high, _metadata(site, handle, facts))


async def pay_invoice(database: Database, port: LightningPort, settings: Settings, site: Site, name: str,
                      raw_amount: str | None, today: date | None = None, *, address: str | None = None) -> InvoiceRow:
    """LUD-06's callback: a repayment invoice for `raw_amount` msat whose `h` is SHA-256 of the metadata."""
    as_of = today or loan_service.utc_today()
    amount_msat = lnurl.parse_amount(raw_amount)
    loan, facts = await reading(database, lambda c: due_facts(c, name, as_of))
    lnurl.check_amount(amount_msat, facts.payoff_msat)
    handle = lnurl.check_handle(name)
    return await loan_service.repayment_invoice(
        database, port, settings, loan.borrower_id, loan.id, amount_msat, as_of,
        description=_metadata(site, handle, facts), deschashonly=True, address=address, paycode=True)


def loan_pay_code(database: Database, site: Site, loan_id: int) -> PayCode:
    return pay_code(site, loan_id, handle_of(database, loan_id))


@dataclass(frozen=True)
class RepaymentCard:
    """The printable card: no name, no story — the loan number, its pay code and when to pay."""

    loan_id: int
    frequency: str  # daily, weekly, monthly
    installment_msat: int  # the next open installment's principal and interest
    next_due: tuple[date, int] | None
    payoff_msat: int
    code: PayCode


def repayment_card(database: Database, site: Site, loan_id: int, viewer_id: int, viewer_is_operator: bool,
                   today: date | None = None) -> RepaymentCard:
    """The borrower's own loan (or any, for the operator) while it takes repayments; NotFound or Conflict else."""
    as_of = today or loan_service.utc_today()

    def read(conn: Connection) -> tuple[LoanRow, lnurl.DueFacts, int]:
        loan = loans.get_loan(conn, loan_id)
        if loan.borrower_id != viewer_id and not viewer_is_operator:
            raise NotFound(N_("There is no such loan."))
        state = loans.loan_states(conn, [loan]).get(loan.id)
        if loan.status not in PAYABLE_STATUSES or state is None or state.payoff_msat(as_of) == 0:
            raise Conflict(N_("This loan takes no repayments now, so it has no repayment card."))
        seen = refresh(state, as_of)
        upcoming = next((i for i in seen.installments if not i.is_paid), None)
        regular = upcoming.due_msat if upcoming is not None else state.payoff_msat(as_of)
        return loan, lnurl.DueFacts(loan.id, seen.next_due(as_of), state.payoff_msat(as_of)), regular

    loan, facts, regular = database.read(read)
    return RepaymentCard(loan.id, loan.frequency, regular, facts.next_due, facts.payoff_msat,
                         loan_pay_code(database, site, loan.id))
