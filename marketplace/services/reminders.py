"""Reminders and lender alerts: written once into the outbox, then sent by the scheduler.

`queue_reminders` looks at active loans on a given day and writes:

* `due:{loan}:{number}` — to the borrower, `REMINDER_DAYS_BEFORE` days (or
  fewer) before an installment that is not fully paid falls due;
* `late:{loan}:{number}` — to the borrower, once an installment is past its
  due date and still unpaid;
* `lender-late:{loan}:{note}` — to each note holder, when the loan's
  delinquency is `late`;
* `lender-default:{loan}:{note}` — to each note holder, when it is `defaulted`.

Each key is unique in the table: a notice already written is skipped (looked
up first), and a concurrent writer that wins the race only makes our insert
fail inside its own savepoint, which is ignored. So the job can run as often
as wanted, from several processes, on SQLite or PostgreSQL.

`send_pending` then hands each pending notice to the mailer and marks it
`sent` (with sent_at) or `failed` (with the error). Without SMTP the outbox
mailer "sends" to the outbox page, so nothing is silently dropped.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from marketplace.db import loans as loan_rows
from marketplace.db.tables import notes, outbox, users
from marketplace.domain.money import format_msat
from marketplace.db.engine import Database
from marketplace.services.mailer import Mailer, OutboxMailer, mailer_from_settings
from marketplace.settings import Settings

log = logging.getLogger("microlend.reminders")

# Not in Settings yet: how many days before a due date the borrower is reminded.
REMINDER_DAYS_BEFORE = 2
SEND_BATCH = 100
ERROR_MAX = 2000


@dataclass(frozen=True)
class Draft:
    user_id: int
    kind: str
    dedupe_key: str
    subject: str
    body: str


def reminder_days_before(settings: Settings) -> int:
    return int(getattr(settings, "reminder_days_before", REMINDER_DAYS_BEFORE))


def drafts_for(conn: Connection, as_of: date, settings: Settings) -> list[Draft]:
    """Every notice the loans call for on `as_of`, already written or not."""
    days_before = reminder_days_before(settings)
    active = sorted(loan_rows.list_loans(conn, status=("active",), limit=1_000_000), key=lambda loan: loan.id)
    if not active:
        return []
    ids = [loan.id for loan in active]
    states = loan_rows.loan_states(conn, active)
    undisbursed = [i for i in ids if i not in states]  # none in practice: an active loan has a balance
    schedules = {i: list(state.recorded) for i, state in states.items()}
    schedules.update(loan_rows.installment_states(conn, undisbursed) if undisbursed else {})
    # Late only while the borrower is behind the schedule's principal (allocation.LoanState.behind).
    behind = {i: ({inst.number for inst in states[i].behind(as_of)} if i in states
                  else {inst.number for inst in schedules[i] if inst.due_date < as_of}) for i in ids}
    holders: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
    for r in conn.execute(select(notes.c.loan_id, notes.c.id, notes.c.lender_id)
                          .where(notes.c.loan_id.in_(ids), notes.c.status == "active").order_by(notes.c.id)):
        holders[int(r.loan_id)].append((int(r.id), int(r.lender_id)))

    drafts: list[Draft] = []
    for loan in active:
        loan_id, borrower = int(loan.id), int(loan.borrower_id)
        count = len(schedules[loan_id])
        for item in schedules[loan_id]:
            if item.is_paid:
                continue
            days_left = (item.due_date - as_of).days
            if 0 <= days_left <= days_before:
                when = "today" if days_left == 0 else ("tomorrow" if days_left == 1 else f"in {days_left} days")
                drafts.append(Draft(
                    borrower, "due", f"due:{loan_id}:{item.number}",
                    f"Loan {loan_id}: installment {item.number} is due {when}",
                    f"Installment {item.number} of {count} of your loan {loan_id} is due on "
                    f"{item.due_date.isoformat()} ({when}): {format_msat(item.unpaid_msat)}.\n"
                    f"Pay it from the loan's page: /loans/{loan_id}"))
            elif days_left < 0 and item.number in behind[loan_id]:
                drafts.append(Draft(
                    borrower, "late", f"late:{loan_id}:{item.number}",
                    f"Loan {loan_id}: installment {item.number} is late",
                    f"Installment {item.number} of {count} of your loan {loan_id} was due on "
                    f"{item.due_date.isoformat()} and is not paid: {format_msat(item.unpaid_msat)} is owed.\n"
                    "Pay as soon as you can: after the grace period a late fee is added, and a loan long "
                    f"overdue goes into default. Pay from the loan's page: /loans/{loan_id}"))
        if loan.delinquency in ("late", "defaulted"):
            kind = "lender-late" if loan.delinquency == "late" else "lender-default"
            for note_id, lender in holders[loan_id]:
                if kind == "lender-late":
                    subject = f"Loan {loan_id}, which you hold a note of, is late"
                    body = (f"The borrower of loan {loan_id} ({loan.purpose}) is behind on its repayments "
                            f"(your note {note_id}). Repayments still reach you as they come in.\n"
                            f"Loan page: /loans/{loan_id}")
                else:
                    subject = f"Loan {loan_id}, which you hold a note of, has defaulted"
                    body = (f"Loan {loan_id} ({loan.purpose}) is in default (your note {note_id}). "
                            "Any later recovery is still paid to the note holders.\n"
                            f"Loan page: /loans/{loan_id}")
                drafts.append(Draft(lender, kind, f"{kind}:{loan_id}:{note_id}", subject, body))
    return drafts


def write_once(conn: Connection, drafts: Iterable[Draft], now: datetime) -> int:
    """Insert the drafts whose key is new; the number written. Safe against a concurrent writer."""
    pending = list(drafts)
    if not pending:
        return 0
    known: set[str] = set()
    keys = [d.dedupe_key for d in pending]
    for start in range(0, len(keys), 500):
        known.update(str(k) for k in conn.execute(
            select(outbox.c.dedupe_key).where(outbox.c.dedupe_key.in_(keys[start:start + 500]))).scalars())
    written = 0
    for draft in pending:
        if draft.dedupe_key in known:
            continue
        try:
            with conn.begin_nested():
                conn.execute(insert(outbox).values(
                    user_id=draft.user_id, kind=draft.kind, dedupe_key=draft.dedupe_key, subject=draft.subject,
                    body=draft.body, created_at=now, status="pending", error=""))
        except IntegrityError:
            continue  # another writer got there first: the notice exists, once
        known.add(draft.dedupe_key)
        written += 1
    return written


def queue_reminders(conn: Connection, as_of: date, settings: Settings, now: datetime | None = None) -> int:
    """Write the day's new notices (call inside a transaction); how many were new."""
    return write_once(conn, drafts_for(conn, as_of, settings), now or datetime.now(timezone.utc))


ConnFactory = Callable[[], AbstractContextManager[Connection]]


def send_pending(conn_factory: ConnFactory, mailer: Mailer | None = None, batch: int = SEND_BATCH) -> tuple[int, int]:
    """Send every pending notice once; (sent, failed).

    `conn_factory` opens one transaction (e.g. `database.transaction`). Each
    notice is locked, sent and marked in its own transaction, so a notice is
    never sent twice by two schedulers and one bad address does not hold up
    the rest.
    """
    chosen = mailer or OutboxMailer()
    sent = failed = 0
    with conn_factory() as conn:
        ids = [int(i) for i in conn.execute(
            select(outbox.c.id).where(outbox.c.status == "pending").order_by(outbox.c.id).limit(batch)).scalars()]
    for notice_id in ids:
        with conn_factory() as conn:
            query = (select(outbox.c.subject, outbox.c.body, users.c.email)
                     .select_from(outbox.join(users, users.c.id == outbox.c.user_id))
                     .where(outbox.c.id == notice_id, outbox.c.status == "pending"))
            row = conn.execute(query.with_for_update(of=outbox, skip_locked=True)).one_or_none()
            if row is None:
                continue  # sent meanwhile by another scheduler
            now = datetime.now(timezone.utc)
            try:
                chosen.send(str(row.email), str(row.subject), str(row.body))
            except Exception as exc:  # any delivery failure is recorded on the notice, never raised
                log.warning("notice %s could not be sent: %s", notice_id, exc)
                conn.execute(update(outbox).where(outbox.c.id == notice_id).values(
                    status="failed", error=f"{type(exc).__name__}: {exc}"[:ERROR_MAX]))
                failed += 1
                continue
            conn.execute(update(outbox).where(outbox.c.id == notice_id).values(status="sent", sent_at=now, error=""))
            sent += 1
    return sent, failed


def run_notices(database: Database, settings: Settings, as_of: date | None = None,
                mailer: Mailer | None = None) -> tuple[int, int, int]:
    """One scheduler pass (blocking): queue the day's notices, then send what is pending; (queued, sent, failed)."""
    day = as_of or datetime.now(timezone.utc).date()
    queued = database.run(lambda c: queue_reminders(c, day, settings))
    sent, failed = send_pending(database.transaction, mailer or mailer_from_settings(settings))
    return queued, sent, failed
