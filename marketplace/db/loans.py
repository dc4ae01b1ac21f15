"""Loans, notes and installments as rows: reads and set-based writes. Call inside a transaction."""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, select, update

from marketplace.db import ledger
from marketplace.db.tables import accounts, installments, loans, notes, users
from marketplace.domain.errors import NotFound
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.allocation import Balance, InstallmentState, LoanState
from marketplace.domain.loans.limits import BorrowerRecord
from marketplace.domain.loans.schedules import Contract, Frequency, Method, Prepayment
from marketplace.domain.messages import N_


@dataclass(frozen=True)
class LoanRow:
    id: int
    borrower_id: int
    amount_msat: int
    purpose: str
    story: str
    annual_rate_bps: int
    term_count: int
    frequency: str
    method: str
    apr_bps: int
    service_fee_bps: int
    grade: str
    status: str
    delinquency: str
    funded_msat: int
    escrow_account_id: int
    funding_deadline: datetime
    created_at: datetime
    funded_at: datetime | None
    disbursed_at: datetime | None
    start_date: date | None
    defaulted_on: date | None
    closed_on: date | None
    max_days_past_due: int
    prepayment: str
    aprc_bps: int
    disburse_by: datetime | None
    principal_outstanding_msat: int
    interest_accrued_msat: int
    accrued_on: date | None
    installment_msat: int | None
    shared_cash_msat: int
    shared_principal_msat: int
    shared_income_msat: int
    pd_ppm: int
    origination_grade: str
    origination_pd_ppm: int
    shared_cash_base_msat: int | None

    @property
    def remaining_msat(self) -> int:
        return self.amount_msat - self.funded_msat

    @property
    def contract(self) -> Contract:
        """The loan's terms; before disbursement, as if it started today."""
        start = self.start_date or datetime.now(timezone.utc).date()
        # A written-off loan accrues nothing after the write-off (closed_on).
        stops = self.closed_on if self.status == "written_off" else None
        return Contract(self.amount_msat, self.annual_rate_bps, self.term_count, Frequency(self.frequency),
                        Method(self.method), start, Prepayment(self.prepayment), stops)

    @property
    def balance(self) -> Balance:
        assert self.accrued_on is not None, "only a disbursed loan has a balance"
        return Balance(self.principal_outstanding_msat, self.interest_accrued_msat, self.accrued_on)


@dataclass(frozen=True)
class NoteRow:
    id: int
    loan_id: int
    lender_id: int
    amount_msat: int
    principal_outstanding_msat: int
    principal_repaid_msat: int
    income_msat: int
    received_msat: int
    loss_msat: int
    status: str
    created_at: datetime
    share_weight_msat: int


LOAN_COLUMNS = [loans.c[name] for name in LoanRow.__dataclass_fields__]
NOTE_COLUMNS = [notes.c[name] for name in NoteRow.__dataclass_fields__]
OPEN_STATUSES = ("funding", "funded", "active")


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def loan_from(r: object) -> LoanRow:
    values = {name: getattr(r, name) for name in LoanRow.__dataclass_fields__}
    for name in ("funding_deadline", "created_at", "funded_at", "disbursed_at", "disburse_by"):
        if values[name] is not None:
            values[name] = aware(values[name])
    return LoanRow(**values)


def note_from(r: object) -> NoteRow:
    return NoteRow(**{name: getattr(r, name) for name in NoteRow.__dataclass_fields__})


def insert_loan(conn: Connection, *, borrower_id: int, amount_msat: int, purpose: str, story: str,
                annual_rate_bps: int, term_count: int, frequency: str, method: str, prepayment: str, apr_bps: int,
                aprc_bps: int, service_fee_bps: int, grade: str, pd_ppm: int, funding_deadline: datetime) -> int:
    escrow = ledger.create_account(conn, f"escrow:{uuid.uuid4().hex}", AccountKind.LOAN_ESCROW)
    result = conn.execute(insert(loans).values(
        borrower_id=borrower_id, amount_msat=amount_msat, purpose=purpose, story=story,
        annual_rate_bps=annual_rate_bps, term_count=term_count, frequency=frequency, method=method,
        prepayment=prepayment, apr_bps=apr_bps, aprc_bps=aprc_bps, service_fee_bps=service_fee_bps, grade=grade,
        pd_ppm=pd_ppm, origination_grade=grade, origination_pd_ppm=pd_ppm,
        status="funding", delinquency="current", funded_msat=0, escrow_account_id=escrow,
        funding_deadline=funding_deadline, created_at=datetime.now(timezone.utc),
    ))
    assert result.inserted_primary_key is not None
    loan_id = int(result.inserted_primary_key[0])
    conn.execute(update(accounts).where(accounts.c.id == escrow).values(code=f"loan:{loan_id}:escrow"))
    return loan_id


def get_loan(conn: Connection, loan_id: int, *, lock: bool = False) -> LoanRow:
    query = select(*LOAN_COLUMNS).where(loans.c.id == loan_id)
    found = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if found is None:
        raise NotFound(N_("There is no such loan."))
    return loan_from(found)


def list_loans(conn: Connection, *, status: Sequence[str] | None = None, borrower_id: int | None = None,
               limit: int = 200, offset: int = 0) -> list[LoanRow]:
    query = select(*LOAN_COLUMNS).order_by(loans.c.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(loans.c.status.in_(status))
    if borrower_id is not None:
        query = query.where(loans.c.borrower_id == borrower_id)
    return [loan_from(r) for r in conn.execute(query)]


def borrower_record(conn: Connection, borrower_id: int, grace_days: int) -> BorrowerRecord:
    row = conn.execute(
        select(
            func.coalesce(func.sum(case((and_(loans.c.status == "repaid", loans.c.max_days_past_due <= grace_days),
                                         1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(loans.c.status == "repaid", loans.c.max_days_past_due > grace_days),
                                         1), else_=0)), 0),
            func.coalesce(func.sum(case((loans.c.defaulted_on.is_not(None), 1), else_=0)), 0),
            func.coalesce(func.sum(case((loans.c.status.in_(OPEN_STATUSES), 1), else_=0)), 0),
        ).where(loans.c.borrower_id == borrower_id)
    ).one()
    return BorrowerRecord(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def notes_of_loan(conn: Connection, loan_id: int, statuses: Sequence[str] = ("pledged", "active")) -> list[NoteRow]:
    rows = conn.execute(select(*NOTE_COLUMNS).where(notes.c.loan_id == loan_id, notes.c.status.in_(statuses))
                        .order_by(notes.c.id))
    return [note_from(r) for r in rows]


def notes_of_lender(conn: Connection, lender_id: int) -> list[NoteRow]:
    rows = conn.execute(select(*NOTE_COLUMNS).where(notes.c.lender_id == lender_id).order_by(notes.c.id.desc()))
    return [note_from(r) for r in rows]


def get_note(conn: Connection, note_id: int, *, lock: bool = False) -> NoteRow:
    query = select(*NOTE_COLUMNS).where(notes.c.id == note_id)
    found = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if found is None:
        raise NotFound(N_("There is no such note."))
    return note_from(found)


def insert_note(conn: Connection, loan_id: int, lender_id: int, amount_msat: int) -> int:
    result = conn.execute(insert(notes).values(
        loan_id=loan_id, lender_id=lender_id, amount_msat=amount_msat, principal_outstanding_msat=amount_msat,
        share_weight_msat=amount_msat, status="pledged", created_at=datetime.now(timezone.utc)))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def set_loan(conn: Connection, loan_id: int, **values: object) -> None:
    conn.execute(update(loans).where(loans.c.id == loan_id).values(**values))


def set_notes_status(conn: Connection, note_ids: Iterable[int], status: str) -> None:
    ids = list(note_ids)
    if ids:
        conn.execute(update(notes).where(notes.c.id.in_(ids)).values(status=status))


def write_installments(conn: Connection, loan_id: int, rows: Sequence[InstallmentState]) -> None:
    conn.execute(insert(installments), [
        {"loan_id": loan_id, "number": i.number, "due_date": i.due_date, "principal_msat": i.principal_msat,
         "interest_msat": i.interest_msat, "late_fee_msat": i.late_fee_msat,
         "principal_paid_msat": i.principal_paid_msat, "interest_paid_msat": i.interest_paid_msat,
         "late_fee_paid_msat": i.late_fee_paid_msat, "settled_on": i.settled_on}
        for i in rows
    ])


_INSTALLMENT_FIELDS = ("number", "due_date", "principal_msat", "interest_msat", "late_fee_msat",
                       "principal_paid_msat", "interest_paid_msat", "late_fee_paid_msat", "settled_on")


def installment_states(conn: Connection, loan_ids: Sequence[int]) -> dict[int, list[InstallmentState]]:
    """Every listed loan's installments, in order, in one query."""
    result: dict[int, list[InstallmentState]] = {loan_id: [] for loan_id in loan_ids}
    rows = conn.execute(
        select(installments.c.loan_id, *[installments.c[f] for f in _INSTALLMENT_FIELDS])
        .where(installments.c.loan_id.in_(list(loan_ids)))
        .order_by(installments.c.loan_id, installments.c.number)
    )
    for r in rows:
        result[int(r.loan_id)].append(InstallmentState(
            int(r.number), r.due_date, int(r.principal_msat), int(r.interest_msat), int(r.late_fee_msat),
            int(r.principal_paid_msat), int(r.interest_paid_msat), int(r.late_fee_paid_msat), r.settled_on))
    return result


def loan_states(conn: Connection, loan_rows: Sequence[LoanRow]) -> dict[int, LoanState]:
    """The domain state of each disbursed loan (balance and installments), in one query."""
    disbursed = [loan for loan in loan_rows if loan.accrued_on is not None]
    rows = installment_states(conn, [loan.id for loan in disbursed]) if disbursed else {}
    return {loan.id: LoanState(loan.contract, loan.balance, tuple(rows[loan.id]), loan.installment_msat)
            for loan in disbursed}


def loan_state(conn: Connection, loan: LoanRow) -> LoanState:
    found = loan_states(conn, [loan]).get(loan.id)
    if found is None:
        raise NotFound(N_("This loan has no schedule yet."))
    return found


def note_weights(conn: Connection, loan_ids: Sequence[int]) -> dict[int, list[tuple[int, int, int]]]:
    """Each listed loan's notes that share repayments, as (note id, share weight, lender id), in note order."""
    result: dict[int, list[tuple[int, int, int]]] = {loan_id: [] for loan_id in loan_ids}
    rows = conn.execute(
        select(notes.c.loan_id, notes.c.id, notes.c.share_weight_msat, notes.c.lender_id)
        .where(notes.c.loan_id.in_(list(loan_ids)), notes.c.status.in_(("active", "repaid", "written_off")))
        .order_by(notes.c.loan_id, notes.c.id)
    )
    for r in rows:
        result[int(r.loan_id)].append((int(r.id), int(r.share_weight_msat), int(r.lender_id)))
    return result


def save_installments(conn: Connection, loan_id: int, before: Sequence[InstallmentState],
                      after: Sequence[InstallmentState]) -> None:
    """Write what changed: amounts of installments still there, and drop those no longer needed."""
    old = {i.number: i for i in before}
    new_numbers = {i.number for i in after}
    changed = [
        {"l_id": loan_id, "num": a.number, "p": a.principal_msat, "i": a.interest_msat, "lf": a.late_fee_msat,
         "pp": a.principal_paid_msat, "ip": a.interest_paid_msat, "lfp": a.late_fee_paid_msat, "so": a.settled_on}
        for a in after if old.get(a.number) != a
    ]
    if any(a.number not in old for a in after):
        raise ValueError("installments can only be updated or dropped, never added")
    if changed:
        conn.execute(
            update(installments)
            .where(installments.c.loan_id == bindparam("l_id"), installments.c.number == bindparam("num"))
            .values(principal_msat=bindparam("p"), interest_msat=bindparam("i"), late_fee_msat=bindparam("lf"),
                    principal_paid_msat=bindparam("pp"), interest_paid_msat=bindparam("ip"),
                    late_fee_paid_msat=bindparam("lfp"), settled_on=bindparam("so")),
            changed,
        )
    dropped = [number for number in old if number not in new_numbers]
    if dropped:
        conn.execute(delete(installments).where(installments.c.loan_id == loan_id,
                                                installments.c.number.in_(dropped)))


def save_balance(conn: Connection, loan_id: int, balance: Balance) -> None:
    conn.execute(update(loans).where(loans.c.id == loan_id).values(
        principal_outstanding_msat=balance.principal_msat, interest_accrued_msat=balance.interest_msat,
        accrued_on=balance.accrued_on))


def display_names(conn: Connection, user_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {int(i): str(n) for i, n in conn.execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(ids)))}


def lender_reserved_ids(conn: Connection, lender_ids: Iterable[int]) -> dict[int, int]:
    return ledger.user_account_ids(conn, lender_ids, AccountKind.USER_RESERVED)


def lender_available_ids(conn: Connection, lender_ids: Iterable[int]) -> dict[int, int]:
    return ledger.user_account_ids(conn, lender_ids, AccountKind.USER_AVAILABLE)
