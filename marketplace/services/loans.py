"""Loans, one function per thing a person does; each owns its transaction(s)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, select

from lightning.invoices import AmountMissing, InvalidInvoice, check_payable
from lightning.port import LightningPort
from marketplace.db import disbursements, ledger, loans
from marketplace.db.engine import Database
from marketplace.db.invoices import InvoiceRow
from marketplace.db.loans import LoanRow, NoteRow
from marketplace.db.outgoing import OutgoingRow
from marketplace.db.tables import repayments
from marketplace.domain.errors import Conflict, Forbidden, InvalidInput, InvoiceRefused, NotFound
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft, transfer
from marketplace.domain.loans.allocation import InstallmentState, next_due, outstanding_msat
from marketplace.domain.loans.apr import schedule_apr_bps, total_cost_msat
from marketplace.domain.loans.delinquency import DelinquencyPolicy
from marketplace.domain.loans.limits import LendingLimits, check_note, check_request
from marketplace.domain.loans.schedules import Frequency, Method, Schedule, build_schedule
from marketplace.domain.loans.terms import LoanTerms, grade, parse_story
from marketplace.domain.payments import check_amount, fee_reserve_msat
from marketplace.services.deposits import issue_invoice
from marketplace.services.lightning_calls import NodeFacts, in_transaction, reading
from marketplace.services.withdrawals import send_held
from marketplace.settings import Settings
from marketplace.workers.reconciler import reconcile_outgoing


def limits_of(settings: Settings) -> LendingLimits:
    return LendingLimits(
        min_amount_sat=settings.loan_min_sat, max_amount_sat=settings.loan_max_sat,
        max_rate_bps=settings.loan_max_rate_bps, max_count=settings.loan_max_count,
        first_loan_max_sat=settings.loan_first_max_sat, growth_bps=settings.loan_growth_bps,
        min_note_sat=settings.note_min_sat,
    )


def policy_of(settings: Settings) -> DelinquencyPolicy:
    return DelinquencyPolicy(
        grace_days=settings.grace_days, default_after_days=settings.default_after_days,
        write_off_after_days=settings.write_off_after_days, late_fee_bps=settings.late_fee_bps,
        late_fee_flat_msat=settings.late_fee_flat_msat,
    )


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class Preview:
    terms: LoanTerms
    schedule: Schedule
    apr_bps: int
    total_cost_msat: int
    service_fee_bps: int


def preview(settings: Settings, terms: LoanTerms, start: date | None = None) -> Preview:
    """The full price before anyone commits: schedule, total cost, APR (computed)."""
    begin = start or utc_today()
    schedule = build_schedule(terms.amount_msat, terms.annual_rate_bps, terms.count, terms.frequency,
                              terms.method, begin)
    return Preview(terms, schedule, schedule_apr_bps(schedule, begin), total_cost_msat(schedule),
                   settings.service_fee_bps)


def schedule_of(loan: LoanRow) -> Schedule:
    """The loan's schedule: the real one once disbursed, else as if it started today."""
    return build_schedule(loan.amount_msat, loan.annual_rate_bps, loan.term_count, Frequency(loan.frequency),
                          Method(loan.method), loan.start_date or utc_today())


def request_loan(database: Database, settings: Settings, borrower_id: int, terms: LoanTerms, purpose: str,
                 story: str, now: datetime | None = None) -> int:
    purpose, story = parse_story(purpose, story)
    shown = preview(settings, terms)
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> int:
        record = loans.borrower_record(conn, borrower_id, settings.grace_days)
        check_request(terms.amount_msat, terms.annual_rate_bps, terms.count, terms.frequency, record,
                      limits_of(settings))
        return loans.insert_loan(
            conn, borrower_id=borrower_id, amount_msat=terms.amount_msat, purpose=purpose, story=story,
            annual_rate_bps=terms.annual_rate_bps, term_count=terms.count, frequency=terms.frequency.value,
            method=terms.method.value, apr_bps=shown.apr_bps, service_fee_bps=settings.service_fee_bps,
            grade=grade(record), funding_deadline=moment + timedelta(days=settings.funding_days))

    return database.run(work)


def pledge(database: Database, settings: Settings, lender_id: int, loan_id: int, amount_msat: int,
           request_key: str | None = None, now: datetime | None = None) -> int:
    """A note: money moves from available to reserved; the request may become funded."""
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> int:
        if request_key is not None:
            earlier = _note_for_request(conn, request_key)
            if earlier is not None:
                return earlier
        loan = loans.get_loan(conn, loan_id, lock=True)
        if loan.borrower_id == lender_id:
            raise Forbidden("You cannot fund your own loan request.")
        if loan.status != "funding":
            raise Conflict("This request is no longer taking pledges.")
        if loan.funding_deadline <= moment:
            raise Conflict("This request's funding deadline has passed.")
        balances = ledger.user_balances(conn, lender_id)
        check_note(amount_msat, loan.remaining_msat, balances[AccountKind.USER_AVAILABLE], limits_of(settings))
        note_id = loans.insert_note(conn, loan_id, lender_id, amount_msat)
        available = ledger.account_id(conn, ledger.user_account_code(lender_id, AccountKind.USER_AVAILABLE))
        reserved = ledger.account_id(conn, ledger.user_account_code(lender_id, AccountKind.USER_RESERVED))
        key = f"pledge:{request_key}" if request_key else f"pledge:note:{note_id}"
        ledger.post(conn, [transfer("pledge", available, reserved, amount_msat, key, memo=f"note {note_id}")])
        funded = loan.funded_msat + amount_msat
        values: dict[str, object] = {"funded_msat": funded}
        if funded == loan.amount_msat:
            values.update(status="funded", funded_at=moment)
        loans.set_loan(conn, loan_id, **values)
        return note_id

    return database.run(work)


def _note_for_request(conn: Connection, request_key: str) -> int | None:
    from marketplace.db.tables import journal_entries

    memo = conn.execute(select(journal_entries.c.memo)
                        .where(journal_entries.c.idempotency_key == f"pledge:{request_key}")).scalar()
    return int(str(memo).split()[-1]) if memo else None


def withdraw_pledge(database: Database, lender_id: int, note_id: int) -> None:
    def work(conn: Connection) -> None:
        note = loans.get_note(conn, note_id, lock=True)
        if note.lender_id != lender_id:
            raise NotFound("There is no such note.")
        loan = loans.get_loan(conn, note.loan_id, lock=True)
        if note.status != "pledged" or loan.status != "funding":
            raise Conflict("Only a pledge to a request that is still being funded can be withdrawn.")
        _release_notes(conn, loan, [note], "pledge_withdrawn")
        loans.set_loan(conn, loan.id, funded_msat=loan.funded_msat - note.amount_msat)

    database.run(work)


def _release_notes(conn: Connection, loan: LoanRow, released: list[NoteRow], kind: str) -> None:
    per_lender: dict[int, int] = {}
    for note in released:
        per_lender[note.lender_id] = per_lender.get(note.lender_id, 0) + note.amount_msat
    if not per_lender:
        return
    available = loans.lender_available_ids(conn, per_lender)
    reserved = loans.lender_reserved_ids(conn, per_lender)
    lines: list[LineDraft] = []
    for lender, amount in sorted(per_lender.items()):
        lines += [LineDraft(reserved[lender], amount), LineDraft(available[lender], -amount)]
    key = f"{kind}:{loan.id}:" + ",".join(str(n.id) for n in released)
    ledger.post(conn, [EntryDraft(kind, tuple(lines), key)])
    loans.set_notes_status(conn, (n.id for n in released), "released")


def expire_requests(database: Database, now: datetime | None = None) -> int:
    """Requests past their deadline release every pledge; idempotent."""
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> int:
        expired = [loan for loan in loans.list_loans(conn, status=("funding",), limit=10_000)
                   if loan.funding_deadline <= moment]
        for loan in expired:
            _release_notes(conn, loan, loans.notes_of_loan(conn, loan.id, ("pledged",)), "request_expired")
            loans.set_loan(conn, loan.id, status="expired", closed_on=moment.date())
        return len(expired)

    return database.run(work)


async def disburse(database: Database, port: LightningPort, facts: NodeFacts, settings: Settings,
                   borrower_id: int, loan_id: int, bolt11: str) -> OutgoingRow:
    """Pay the principal to the borrower's own invoice; only success starts the loan."""
    await reconcile_outgoing(database, port, settings)
    loan = await reading(database, lambda c: loans.get_loan(c, loan_id))
    if loan.borrower_id != borrower_id:
        raise NotFound("There is no such loan.")
    if loan.status != "funded":
        raise Conflict("This loan is not waiting for a disbursement.")
    info = await facts.get()
    try:
        payable = check_payable(bolt11, node_network=info.network, own_node_id=info.id)
    except AmountMissing:  # an invoice without an amount is paid exactly the principal
        payable = check_payable(bolt11, node_network=info.network, own_node_id=info.id, amount_msat=loan.amount_msat)
    except InvalidInvoice as exc:
        raise InvoiceRefused(exc.message) from exc
    if payable.amount_msat != loan.amount_msat:
        raise InvoiceRefused(
            f"The invoice asks for {payable.amount_msat // 1000:,} sat but the loan is "
            f"{loan.amount_msat // 1000:,} sat: make an invoice for exactly the loan amount.")
    reserve = fee_reserve_msat(loan.amount_msat, settings.fee_reserve_ppm, settings.fee_reserve_min_msat)
    payment_id = await in_transaction(database, lambda c: disbursements.hold(
        c, loan_id, borrower_id, payable.invoice.payment_hash, payable.invoice.bolt11, reserve))
    return await send_held(database, port, settings, payment_id, payable.invoice.bolt11,
                           payable.amount_param_msat, reserve)


async def repayment_invoice(database: Database, port: LightningPort, settings: Settings, borrower_id: int,
                            loan_id: int, amount_msat: int | None, today: date | None = None,
                            *, address: str | None = None) -> InvoiceRow:
    """An invoice for the next due amount, or any other amount (partial or early)."""
    as_of = today or utc_today()
    loan, states = await reading(database, lambda c: (loans.get_loan(c, loan_id),
                                                      loans.installment_states(c, [loan_id])[loan_id]))
    if loan.borrower_id != borrower_id:
        raise NotFound("There is no such loan.")
    if loan.status not in ("active", "written_off"):
        raise Conflict("This loan takes no repayments" + (": it is fully repaid." if loan.status == "repaid" else "."))
    most = outstanding_msat(states, as_of)
    if amount_msat is None:
        due = next_due(states, as_of)
        if due is None or most == 0:
            raise Conflict("Nothing is due on this loan.")
        amount_msat = min(due[1], most)  # after early payments the payoff can be less than an installment
    check_amount(amount_msat, 1, settings.loan_max_sat * 2, "repayment")
    if amount_msat > most:
        raise InvalidInput(f"Paying the whole loan off today costs {most // 1000:,} sat"
                           f"{'.%03d' % (most % 1000) if most % 1000 else ''}; ask for at most that.")
    return await issue_invoice(database, port, settings, "repayment", borrower_id, amount_msat,
                               f"Microlend loan {loan_id} repayment", loan_id=loan_id, address=address)


@dataclass(frozen=True)
class AgingReport:
    checked: int
    changed: int
    late_fees_assessed: int
    written_off: int
    expired_requests: int


def age_loans(database: Database, settings: Settings, as_of: date | None = None) -> AgingReport:
    """The daily job: late fees, delinquency states, defaults, write-offs. Idempotent."""
    from marketplace.services.aging import age_all

    day = as_of or utc_today()
    expired = expire_requests(database, datetime.combine(day, datetime.min.time(), timezone.utc)
                              if as_of else None)
    checked, changed, fees, written_off = database.run(lambda c: age_all(c, policy_of(settings), day))
    return AgingReport(checked, changed, fees, written_off, expired)


def repayments_of(conn: Connection, loan_id: int) -> list[dict[str, object]]:
    rows = conn.execute(select(repayments).where(repayments.c.loan_id == loan_id).order_by(repayments.c.id.desc()))
    return [dict(r._mapping) for r in rows]


def loan_states(conn: Connection, loan_id: int) -> list[InstallmentState]:
    return loans.installment_states(conn, [loan_id])[loan_id]
