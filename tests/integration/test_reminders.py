"""Reminders and lender alerts: each written once, sent once; and the invoice-creation rate limit."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, insert, select

from marketplace.db import loans as loan_rows
from marketplace.db.engine import Database
from marketplace.db.tables import installments, invoices, outbox
from marketplace.services.accounts import create_user
from marketplace.services.invoice_limits import INVOICES_PER_WINDOW, TooManyInvoices, check_invoice_rate
from marketplace.services.reminders import REMINDER_DAYS_BEFORE, queue_reminders, run_notices, send_pending
from marketplace.settings import Settings
from tests.web.support import PASSWORD

TODAY = date(2026, 3, 10)


def make_active_loan(database: Database, borrower_id: int, lender_ids: list[int], due_dates: list[date], *,
                     installment_msat: int = 1_000_000, status: str = "active", delinquency: str = "current",
                     paid: tuple[int, ...] = ()) -> int:
    """A loan straight into the tables: its installments (numbered from 1) and one active note per lender."""
    amount = installment_msat * len(due_dates)

    def work(conn: Connection) -> int:
        loan_id = loan_rows.insert_loan(
            conn, borrower_id=borrower_id, amount_msat=amount, purpose="business", story="A sewing machine.",
            annual_rate_bps=1800, term_count=len(due_dates), frequency="monthly", method="annuity",
            prepayment="reduce_term", apr_bps=1900, aprc_bps=1956, service_fee_bps=1000, grade="B", pd_ppm=20_000,
            funding_deadline=datetime.now(timezone.utc) + timedelta(days=14))
        loan_rows.set_loan(conn, loan_id, status=status, delinquency=delinquency, funded_msat=amount,
                           start_date=due_dates[0] - timedelta(days=30))
        conn.execute(insert(installments), [
            {"loan_id": loan_id, "number": n, "due_date": d, "principal_msat": installment_msat - 1000,
             "interest_msat": 1000, "late_fee_msat": 0,
             "principal_paid_msat": installment_msat - 1000 if n in paid else 0,
             "interest_paid_msat": 1000 if n in paid else 0, "late_fee_paid_msat": 0}
            for n, d in enumerate(due_dates, start=1)])
        share = amount // max(1, len(lender_ids))
        note_ids = [loan_rows.insert_note(conn, loan_id, lender, share) for lender in lender_ids]
        loan_rows.set_notes_status(conn, note_ids, "active")
        return loan_id

    return database.run(work)


@pytest.fixture
def people(database: Database, settings: Settings) -> dict[str, int]:
    return {name: create_user(database, settings, f"{name}@example.org", PASSWORD, role, name.capitalize())
            for name, role in (("bea", "borrower"), ("lea", "lender"), ("leo", "lender"))}


def notices(database: Database) -> list[tuple[int, str, str, str]]:
    return [(int(r.user_id), str(r.kind), str(r.dedupe_key), str(r.status)) for r in database.read(
        lambda c: c.execute(select(outbox.c.user_id, outbox.c.kind, outbox.c.dedupe_key, outbox.c.status)
                            .order_by(outbox.c.id)).all())]


def queue(database: Database, settings: Settings, as_of: date) -> int:
    return database.run(lambda c: queue_reminders(c, as_of, settings))


def test_due_reminder_days_before_and_only_once(database: Database, settings: Settings,
                                                people: dict[str, int]) -> None:
    loan = make_active_loan(database, people["bea"], [people["lea"]],
                            [TODAY + timedelta(days=REMINDER_DAYS_BEFORE + 1), TODAY + timedelta(days=40)])
    assert queue(database, settings, TODAY) == 0  # 3 days before: too early
    assert queue(database, settings, TODAY + timedelta(days=1)) == 1
    assert queue(database, settings, TODAY + timedelta(days=2)) == 0  # already reminded
    assert queue(database, settings, TODAY + timedelta(days=3)) == 0  # due today: still the same reminder
    assert notices(database) == [(people["bea"], "due", f"due:{loan}:1", "pending")]
    body = database.read(lambda c: c.execute(select(outbox.c.subject, outbox.c.body)).one())
    assert "installment 1" in body.subject and "1,000 sat" in body.body and f"/loans/{loan}" in body.body


def test_late_installment_told_once_paid_ones_never(database: Database, settings: Settings,
                                                   people: dict[str, int]) -> None:
    loan = make_active_loan(database, people["bea"], [people["lea"]],
                            [TODAY - timedelta(days=40), TODAY - timedelta(days=10), TODAY + timedelta(days=20)],
                            paid=(1,))
    assert queue(database, settings, TODAY) == 1
    assert queue(database, settings, TODAY + timedelta(days=1)) == 0
    assert notices(database) == [(people["bea"], "late", f"late:{loan}:2", "pending")]


def test_repaid_or_funding_loans_get_nothing(database: Database, settings: Settings, people: dict[str, int]) -> None:
    make_active_loan(database, people["bea"], [people["lea"]], [TODAY - timedelta(days=5)], status="repaid",
                     delinquency="late")
    make_active_loan(database, people["bea"], [people["lea"]], [TODAY + timedelta(days=1)], status="funded")
    assert queue(database, settings, TODAY) == 0
    assert notices(database) == []


def test_lenders_told_when_late_then_when_defaulted(database: Database, settings: Settings,
                                                   people: dict[str, int]) -> None:
    lea, leo = people["lea"], people["leo"]
    loan = make_active_loan(database, people["bea"], [lea, leo], [TODAY - timedelta(days=20)], delinquency="late")
    notes = database.read(lambda c: [n.id for n in loan_rows.notes_of_loan(c, loan, ("active",))])
    assert queue(database, settings, TODAY) == 3  # the borrower's late notice and one per note holder
    assert queue(database, settings, TODAY) == 0
    database.run(lambda c: loan_rows.set_loan(c, loan, delinquency="defaulted"))
    assert queue(database, settings, TODAY + timedelta(days=50)) == 2
    assert queue(database, settings, TODAY + timedelta(days=51)) == 0
    keys = {(user, key) for user, _, key, _ in notices(database)}
    assert keys == {
        (people["bea"], f"late:{loan}:1"),
        (lea, f"lender-late:{loan}:{notes[0]}"), (leo, f"lender-late:{loan}:{notes[1]}"),
        (lea, f"lender-default:{loan}:{notes[0]}"), (leo, f"lender-default:{loan}:{notes[1]}"),
    }


def test_concurrent_runs_write_each_notice_once(database: Database, settings: Settings,
                                               people: dict[str, int]) -> None:
    for _ in range(3):
        make_active_loan(database, people["bea"], [people["lea"], people["leo"]],
                         [TODAY - timedelta(days=20), TODAY + timedelta(days=1)], delinquency="late")
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(queue(database, settings, TODAY))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Per loan: one late, one due, two lender-late notices.
    assert sum(results) == 12
    assert len(notices(database)) == 12
    assert len({key for _, _, key, _ in notices(database)}) == 12


class Recorder:
    name = "test"

    def __init__(self, fail_for: str = "") -> None:
        self.fail_for = fail_for
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        if to == self.fail_for:
            raise ConnectionRefusedError("SMTP server refused the connection")
        self.sent.append((to, subject))


def test_send_pending_marks_sent_or_failed_once(database: Database, settings: Settings,
                                               people: dict[str, int]) -> None:
    make_active_loan(database, people["bea"], [people["lea"], people["leo"]], [TODAY - timedelta(days=20)],
                     delinquency="late")
    assert queue(database, settings, TODAY) == 3
    mailer = Recorder(fail_for="leo@example.org")
    assert send_pending(database.transaction, mailer) == (2, 1)
    assert sorted(to for to, _ in mailer.sent) == ["bea@example.org", "lea@example.org"]
    rows = database.read(lambda c: c.execute(select(outbox.c.user_id, outbox.c.status, outbox.c.sent_at,
                                                    outbox.c.error)).all())
    by_user = {int(r.user_id): r for r in rows}
    assert by_user[people["bea"]].status == "sent" and by_user[people["bea"]].sent_at is not None
    assert by_user[people["leo"]].status == "failed" and "refused" in by_user[people["leo"]].error
    assert by_user[people["leo"]].sent_at is None
    # A second pass sends nothing again.
    assert send_pending(database.transaction, mailer) == (0, 0)
    assert len(mailer.sent) == 2


def test_scheduler_pass_without_smtp_lands_in_the_outbox(database: Database, settings: Settings,
                                                        people: dict[str, int]) -> None:
    make_active_loan(database, people["bea"], [people["lea"]], [TODAY + timedelta(days=1)])
    assert run_notices(database, settings, as_of=TODAY) == (1, 1, 0)
    assert run_notices(database, settings, as_of=TODAY) == (0, 0, 0)
    assert [status for *_, status in notices(database)] == ["sent"]


# --- invoice-creation rate limit ----------------------------------------------------------------------


def add_invoices(database: Database, user_id: int, n: int, at: datetime) -> None:
    def work(conn: Connection) -> None:
        start = int(conn.execute(select(invoices.c.id).order_by(invoices.c.id.desc()).limit(1)).scalar() or 0)
        conn.execute(insert(invoices), [
            {"label": f"test-{user_id}-{start + i}-{at.timestamp()}", "purpose": "deposit", "user_id": user_id,
             "amount_msat": 1000, "description": "d", "status": "unpaid", "created_at": at}
            for i in range(n)])

    database.run(work)


def test_invoice_rate_limit(database: Database, people: dict[str, int]) -> None:
    now = datetime.now(timezone.utc)
    lea, leo = people["lea"], people["leo"]
    add_invoices(database, lea, 40, now - timedelta(minutes=11))  # outside the window: not counted
    add_invoices(database, lea, INVOICES_PER_WINDOW - 1, now - timedelta(minutes=5))
    database.run(lambda c: check_invoice_rate(c, lea, now))
    add_invoices(database, lea, 1, now - timedelta(minutes=1))
    with pytest.raises(TooManyInvoices) as refused:
        database.run(lambda c: check_invoice_rate(c, lea, now))
    assert refused.value.status == 429
    assert "30 invoices in the last 10 minutes" in refused.value.message
    assert "5 minutes" in refused.value.message  # the oldest counted one leaves the window then
    assert 0 < refused.value.retry_after_s <= 300
    database.run(lambda c: check_invoice_rate(c, leo, now))  # per user
    database.run(lambda c: check_invoice_rate(c, lea, now + timedelta(minutes=6)))
