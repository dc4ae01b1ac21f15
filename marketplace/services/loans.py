"""Loans, one function per thing a person does; each owns its transaction(s)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, select

from lightning.invoices import AmountMissing, InvalidInvoice, check_payable
from lightning.port import LightningPort
from marketplace.db import event_notices
from marketplace.db import autoinvest as autoinvest_queue
from marketplace.db import disbursements, ledger, loans
from marketplace.db.engine import Database
from marketplace.db.invoices import InvoiceRow
from marketplace.db.loans import LoanRow, NoteRow
from marketplace.db.outgoing import OutgoingRow
from marketplace.db.tables import repayments
from marketplace.domain.errors import Conflict, Forbidden, InvalidInput, InvoiceRefused, NotFound
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft, transfer
from marketplace.domain.loans.allocation import InstallmentState, LoanState
from marketplace.domain.loans.apr import schedule_apr_bps, schedule_aprc_bps, total_cost_msat
from marketplace.domain.loans.delinquency import DelinquencyPolicy
from marketplace.domain.loans.limits import LendingLimits, check_note, check_request
from marketplace.domain.loans.schedules import Schedule, build_schedule, contract_schedule
from marketplace.domain.loans.terms import LoanTerms, parse_story
from marketplace.domain.text import strip_bidi
from marketplace.domain.money import format_msat
from marketplace.domain.payments import check_amount, fee_reserve_msat
from marketplace.services.deposits import issue_invoice
from marketplace.services.grading import PriceGuidance, grade_request, price_guidance
from marketplace.services.lightning_calls import NodeFacts, in_transaction, node_said, reading
from marketplace.services.withdrawals import send_held
from marketplace.settings import Settings
from marketplace.payments.reconciler import reconcile_outgoing
from marketplace.domain.messages import N_

# A replayed request key answers with the first pledge only when it asks for the same pledge.
KEY_USED_ELSEWHERE = N_("This request key was already used for a different pledge; reload the page and pledge again.")


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
    aprc_bps: int
    total_cost_msat: int
    service_fee_bps: int


def preview(settings: Settings, terms: LoanTerms, start: date | None = None) -> Preview:
    """The full price before anyone commits: schedule, total cost, APR and APRC (computed)."""
    begin = start or utc_today()
    schedule = build_schedule(terms.amount_msat, terms.annual_rate_bps, terms.count, terms.frequency,
                              terms.method, begin, terms.prepayment)
    return Preview(terms, schedule, schedule_apr_bps(schedule, begin), schedule_aprc_bps(schedule, begin),
                   total_cost_msat(schedule), settings.service_fee_bps)


def price_guidance_for(conn: Connection, settings: Settings, borrower_id: int, terms: LoanTerms) -> PriceGuidance:
    """The grade, PD and expected loss this request would get now, and the rates its grade was funded at."""
    now = datetime.now(timezone.utc)
    graded = grade_request(conn, borrower_id, terms.amount_msat, terms.count, terms.frequency.value, now.date(),
                           policy_of(settings))
    return price_guidance(conn, graded.grade, graded.pd_ppm, terms.amount_msat, now)


def schedule_of(loan: LoanRow) -> Schedule:
    """The loan's disclosed schedule (paid on every due date): from its start, else as if it started today."""
    return contract_schedule(loan.contract)


def request_loan(database: Database, settings: Settings, borrower_id: int, terms: LoanTerms, purpose: str,
                 story: str, now: datetime | None = None) -> int:
    purpose, story = parse_story(purpose, strip_bidi(story))
    shown = preview(settings, terms)
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> int:
        record = loans.borrower_record(conn, borrower_id, settings.grace_days)
        check_request(terms.amount_msat, terms.annual_rate_bps, terms.count, terms.frequency, record,
                      limits_of(settings))
        graded = grade_request(conn, borrower_id, terms.amount_msat, terms.count, terms.frequency.value,
                               moment.date(), policy_of(settings))
        loan_id = loans.insert_loan(
            conn, borrower_id=borrower_id, amount_msat=terms.amount_msat, purpose=purpose, story=story,
            annual_rate_bps=terms.annual_rate_bps, term_count=terms.count, frequency=terms.frequency.value,
            method=terms.method.value, prepayment=terms.prepayment.value, apr_bps=shown.apr_bps,
            aprc_bps=shown.aprc_bps, service_fee_bps=settings.service_fee_bps, grade=graded.grade,
            pd_ppm=graded.pd_ppm,
            funding_deadline=moment + timedelta(days=settings.funding_days))
        autoinvest_queue.enqueue(conn, "listed", loan_id=loan_id)
        return loan_id

    return database.run(work)


def pledge(database: Database, settings: Settings, lender_id: int, loan_id: int, amount_msat: int,
           request_key: str | None = None, now: datetime | None = None) -> int:
    """A note: money moves from available to reserved; the request may become funded."""
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> int:
        loan = loans.get_loan(conn, loan_id, lock=True)
        # Looked up under the loan's lock: a twin request with the same key waits for this one and then
        # finds its note (read before the lock, both would pass and the second be refused as different).
        if request_key is not None:
            earlier = _note_for_request(conn, request_key)
            if earlier is not None:
                note = loans.get_note(conn, earlier)
                if (note.lender_id, note.loan_id, note.amount_msat) != (lender_id, loan_id, amount_msat):
                    raise Conflict(KEY_USED_ELSEWHERE)
                return earlier
        if loan.borrower_id == lender_id:
            raise Forbidden(N_("You cannot fund your own loan request."))
        if loan.status != "funding":
            raise Conflict(N_("This request is no longer taking pledges."))
        if loan.funding_deadline <= moment:
            raise Conflict(N_("This request's funding deadline has passed."))
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
            values.update(status="funded", funded_at=moment,
                          disburse_by=moment + timedelta(days=settings.disbursement_days))
        loans.set_loan(conn, loan_id, **values)
        if values.get("status") == "funded":
            event_notices.loan_funded(conn, loan_id)
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
            raise NotFound(N_("There is no such note."))
        loan = loans.get_loan(conn, note.loan_id, lock=True)
        if note.status != "pledged" or loan.status != "funding":
            raise Conflict(N_("Only a pledge to a request that is still being funded can be withdrawn."))
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
    """Requests past their funding deadline release every pledge; idempotent."""
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> int:
        due = [loan for loan in loans.list_loans(conn, status=("funding",), limit=10_000)
               if loan.funding_deadline <= moment]
        expired = 0
        for candidate in due:
            # Locked and read again: a pledge that got the lock first (on its own clock, before the
            # deadline) has committed its note by now, and is released with the others, not stranded.
            loan = loans.get_loan(conn, candidate.id, lock=True)
            if loan.status != "funding" or loan.funding_deadline > moment:
                continue
            _release_notes(conn, loan, loans.notes_of_loan(conn, loan.id, ("pledged",)), "request_expired")
            loans.set_loan(conn, loan.id, status="expired", closed_on=moment.date())
            expired += 1
        return expired

    return database.run(work)


def lapse_undisbursed(database: Database, now: datetime | None = None) -> int:
    """Funded requests not disbursed by their deadline lapse: every pledge goes back, everyone is told.

    A request with a disbursement on its way (pending, or unknown until the
    node says) waits for that outcome instead: its money may be with the
    borrower already.
    """
    from marketplace.services.reminders import Draft, write_once

    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> int:
        due = [loan for loan in loans.list_loans(conn, status=("funded",), limit=10_000)
               if loan.disburse_by is not None and loan.disburse_by <= moment]
        lapsed = 0
        for candidate in due:
            loan = loans.get_loan(conn, candidate.id, lock=True)
            if loan.status != "funded" or disbursements.in_flight(conn, loan.id):
                continue
            pledged = loans.notes_of_loan(conn, loan.id, ("pledged",))
            _release_notes(conn, loan, pledged, "request_lapsed")
            loans.set_loan(conn, loan.id, status="lapsed", closed_on=moment.date())
            notices = [Draft(loan.borrower_id, "lapsed", f"lapsed:{loan.id}:borrower",
                             f"Loan {loan.id} lapsed: it was not disbursed in time",
                             f"Your loan request {loan.id} was fully funded but no invoice was given to disburse "
                             f"it by {loan.disburse_by:%Y-%m-%d %H:%M} UTC, so it has lapsed and every pledge went "
                             "back to its lender. You may ask again.")]
            notices += [Draft(note.lender_id, "lapsed", f"lapsed:{loan.id}:{note.id}",
                              f"Loan {loan.id} lapsed: your {format_msat(note.amount_msat)} is available again",
                              f"Loan request {loan.id} was funded but the borrower did not take the money in time. "
                              f"Your note {note.id} of {format_msat(note.amount_msat)} is released: the money is "
                              "back in your available balance.")
                        for note in pledged]
            write_once(conn, notices, moment)
            lapsed += 1
        return lapsed

    return database.run(work)


async def disburse(database: Database, port: LightningPort, facts: NodeFacts, settings: Settings,
                   borrower_id: int, loan_id: int, bolt11: str) -> OutgoingRow:
    """Pay the principal to the borrower's own invoice; only success starts the loan."""
    await reconcile_outgoing(database, port, settings)
    loan = await reading(database, lambda c: loans.get_loan(c, loan_id))
    if loan.borrower_id != borrower_id:
        raise NotFound(N_("There is no such loan."))
    if loan.status != "funded":
        raise Conflict(N_("This loan is not waiting for a disbursement."))
    info = await facts.get(fresh=True)  # a down node: 503 before anything is held
    try:
        payable = check_payable(bolt11, node_network=info.network, own_node_id=info.id)
    except AmountMissing:  # an invoice without an amount is paid exactly the principal
        payable = check_payable(bolt11, node_network=info.network, own_node_id=info.id, amount_msat=loan.amount_msat)
    except InvalidInvoice as exc:
        raise InvoiceRefused(node_said(exc)) from exc
    if payable.amount_msat != loan.amount_msat:
        raise InvoiceRefused(N_(
            "The invoice asks for %(asked)s but the loan is %(loan)s: make an invoice for exactly the loan amount.",
            asked=format_msat(payable.amount_msat), loan=format_msat(loan.amount_msat)))
    reserve = fee_reserve_msat(loan.amount_msat, settings.fee_reserve_ppm, settings.fee_reserve_min_msat)
    payment_id = await in_transaction(database, lambda c: disbursements.hold(
        c, loan_id, borrower_id, payable.invoice.payment_hash, payable.invoice.bolt11, reserve))
    return await send_held(database, port, settings, payment_id, payable.invoice.bolt11,
                           payable.amount_param_msat, reserve)


async def repayment_invoice(database: Database, port: LightningPort, settings: Settings, borrower_id: int,
                            loan_id: int, amount_msat: int | None, today: date | None = None,
                            *, address: str | None = None, description: str | None = None,
                            deschashonly: bool = False, paycode: bool = False) -> InvoiceRow:
    """An invoice for the next due amount, or any other amount up to the payoff (partial or early).

    `paycode`: asked for through the loan's pay code, by anyone: the loan's pay-code budget, not the borrower's.

    `address`: where the request came from (the open-invoice caps per address).
    `description`/`deschashonly`: what the invoice commits to instead of the usual line (LNURL-pay's metadata).
    """
    as_of = today or utc_today()

    def read(conn: Connection) -> tuple[LoanRow, LoanState | None]:
        loan = loans.get_loan(conn, loan_id)
        return loan, loans.loan_states(conn, [loan]).get(loan.id)

    loan, state = await reading(database, read)
    if loan.borrower_id != borrower_id:
        raise NotFound(N_("There is no such loan."))
    if loan.status not in ("active", "written_off") or state is None:
        raise Conflict(N_("This loan takes no repayments: it is fully repaid.") if loan.status == "repaid"
                       else N_("This loan takes no repayments."))
    most = state.payoff_msat(as_of)
    if most == 0:
        raise Conflict(N_("Nothing is owed on this loan."))
    if amount_msat is None:
        due = state.next_due(as_of)
        amount_msat = most if due is None else due[1]
    check_amount(amount_msat, 0, settings.loan_max_sat * 2, N_("repayment"))
    if amount_msat > most:
        raise InvalidInput(N_("Paying the whole loan off today costs %(payoff)s; ask for at most that.",
                              payoff=format_msat(most)))
    return await issue_invoice(database, port, settings, "repayment", borrower_id, amount_msat,
                               description or f"Microlend loan {loan_id} repayment", loan_id=loan_id,
                               address=address, deschashonly=deschashonly, paycode=paycode)


@dataclass(frozen=True)
class AgingReport:
    checked: int
    changed: int
    late_fees_assessed: int
    written_off: int
    expired_requests: int
    lapsed_requests: int = 0
    repaid: int = 0
    regraded: int = 0


def age_loans(database: Database, settings: Settings, as_of: date | None = None,
              today: date | None = None) -> AgingReport:
    """The daily job: expiries and lapses, late fees, delinquency states, defaults, write-offs. Idempotent.

    `as_of` (default today) may not be in the future — that would charge late
    fees for days that have not happened — nor before the day of the last run.
    """
    from marketplace.services.aging import age_all, record_run
    from marketplace.services.grading import regrade_open_loans

    current = today or utc_today()
    day = as_of or current
    if day > current:
        raise InvalidInput(N_("%(day)s is in the future (today is %(today)s, UTC): loans can only be aged up to today.",
                              day=day.isoformat(), today=current.isoformat()))
    moment = datetime.combine(day, datetime.min.time(), timezone.utc) if as_of else None
    database.run(lambda c: record_run(c, "aging", day))
    expired = expire_requests(database, moment)
    lapsed = lapse_undisbursed(database, moment)
    checked, changed, fees, written_off, repaid = database.run(lambda c: age_all(c, policy_of(settings), day))
    regraded = database.run(lambda c: regrade_open_loans(c, day, policy_of(settings)))
    return AgingReport(checked, changed, fees, written_off, expired, lapsed, repaid, regraded)


def repayments_of(conn: Connection, loan_id: int) -> list[dict[str, object]]:
    rows = conn.execute(select(repayments).where(repayments.c.loan_id == loan_id).order_by(repayments.c.id.desc()))
    return [dict(r._mapping) for r in rows]


def installments_of(conn: Connection, loan_id: int) -> list[InstallmentState]:
    return loans.installment_states(conn, [loan_id])[loan_id]
