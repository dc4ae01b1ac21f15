"""The migrations build exactly the schema the code declares, on each backend."""
from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from marketplace.db import migrate
from marketplace.db.engine import Database, make_engine
from marketplace.db.tables import metadata


def test_migrated_schema_matches_the_tables(database: Database) -> None:
    with database.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diffs == []


def test_migrations_are_at_head_and_seed_the_system_accounts(database: Database) -> None:
    assert migrate.current_revision(database.engine) == migrate.head_revision()
    migrate.ensure_current(database.engine)
    codes = database.read(lambda c: c.execute(text("SELECT code FROM accounts ORDER BY code")).scalars().all())
    assert codes == ["system:equity", "system:node_asset", "system:node_fees_paid", "system:operator_fees",
                     "system:refunds_due"]


def test_an_empty_database_is_refused_with_the_upgrade_command(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(migrate.DatabaseBehind, match="microlend db upgrade"):
        migrate.ensure_current(engine)
    migrate.upgrade(engine)
    migrate.ensure_current(engine)
    engine.dispose()


def test_a_database_behind_head_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(migrate.DatabaseBehind, match="revision 0000"):
        migrate.ensure_current(engine)
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    with database.transaction(write=False) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(Exception, match="(?i)foreign key"):
        with database.transaction() as conn:
            conn.execute(text(
                "INSERT INTO journal_lines (entry_id, position, account_id, amount_msat) VALUES (424242, 0, 1, 5)"
            ))


def test_loans_running_before_the_fair_rules_are_carried_onto_them(tmp_path: Path) -> None:
    """Revision 0005 on a loan the old rules were running: a prepayment that had kept the old interest.

    30,000 sat at 24 % over 3 months, two notes (20,000 and 10,000 sat). The
    first installment was paid; then 5,000 sat more, which the old rules spent
    on the second installment's whole interest and part of its principal. The
    third installment still charged interest on the original balance.
    """
    from datetime import date, datetime, timedelta, timezone

    from sqlalchemy import insert, select

    from marketplace.db import ledger
    from marketplace.db.tables import installments, loans, notes, users
    from marketplace.db.verify import verify_ledger
    from marketplace.domain.journal import AccountKind
    from marketplace.domain.loans.calendar import add_months
    from tests.ledger_helpers import deposit_entry

    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.sqlite3'}")
    migrate.upgrade(engine, "0004")
    today = datetime.now(timezone.utc).date()
    start = today - timedelta(days=40)
    due = [add_months(start, k) for k in (1, 2, 3)]
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        people = []
        for role in ("borrower", "lender", "lender"):
            result = conn.execute(insert(users).values(email=f"{role}{len(people)}@legacy.test", password_hash="!",
                                                       role=role, display_name=role, created_at=now))
            assert result.inserted_primary_key is not None
            user_id = int(result.inserted_primary_key[0])
            for kind in (AccountKind.USER_AVAILABLE, AccountKind.USER_RESERVED, AccountKind.USER_PENDING_OUT):
                ledger.create_account(conn, ledger.user_account_code(user_id, kind), kind, user_id)
            people.append(user_id)
        available = ledger.account_id(conn, ledger.user_account_code(people[1], AccountKind.USER_AVAILABLE))
        ledger.post(conn, [deposit_entry(conn, available, 7_000_000)])
        escrow = ledger.create_account(conn, "loan:1:escrow", AccountKind.LOAN_ESCROW)
        conn.execute(text(
            "INSERT INTO loans (id, borrower_id, amount_msat, purpose, story, annual_rate_bps, term_count, frequency,"
            " method, apr_bps, service_fee_bps, grade, status, delinquency, funded_msat, escrow_account_id,"
            " funding_deadline, created_at, start_date, max_days_past_due) VALUES (1, :b, 30000000, 'farming',"
            " 'Seeds.', 2400, 3, 'monthly', 'annuity', 2400, 100, 'C', 'active', 'current', 30000000, :e, :n, :n,"
            " :s, 0)"), {"b": people[0], "e": escrow, "n": now, "s": start})
        old = [(9_802_647, 600_000), (9_998_700, 403_947), (10_198_653, 203_973)]
        paid = [(9_802_647, 600_000), (4_596_053, 403_947), (0, 0)]
        conn.execute(text(
            "INSERT INTO installments (loan_id, number, due_date, principal_msat, interest_msat, late_fee_msat,"
            " principal_paid_msat, interest_paid_msat, late_fee_paid_msat, interest_waived) VALUES"
            " (1, :n, :d, :p, :i, 0, :pp, :ip, 0, 0)"),
            [{"n": k + 1, "d": due[k], "p": old[k][0], "i": old[k][1], "pp": paid[k][0], "ip": paid[k][1]}
             for k in range(3)])
        for lender, amount, left in ((people[1], 20_000_000, 10_400_867), (people[2], 10_000_000, 5_200_433)):
            conn.execute(text(
                "INSERT INTO notes (loan_id, lender_id, amount_msat, principal_outstanding_msat, status, created_at)"
                " VALUES (1, :l, :a, :o, 'active', :n)"), {"l": lender, "a": amount, "o": left, "n": now})
    before = Database(str(engine.url))
    assert before.read(verify_ledger).ok
    before.dispose()

    migrate.upgrade(engine)
    database = Database(str(engine.url))
    assert database.read(verify_ledger).ok
    loan = database.read(lambda c: c.execute(select(loans).where(loans.c.id == 1)).one())
    assert loan.principal_outstanding_msat == 30_000_000 - 9_802_647 - 4_596_053
    # The second installment's whole interest was taken in advance: accrual starts again at its due date.
    assert loan.accrued_on == due[1] and loan.interest_accrued_msat == 0
    rows = database.read(lambda c: c.execute(select(installments).where(installments.c.loan_id == 1)
                                             .order_by(installments.c.number)).all())
    assert [(r.principal_msat, r.interest_msat) for r in rows[:2]] == old[:2]  # due or paid: as they were
    # The third installment is recomputed on the 10,198,653 msat that will be owed after the second:
    # the same here (the old schedule had it right) — and never more.
    assert rows[2].principal_msat == 10_198_653 and rows[2].interest_msat == 203_973
    assert sum(r.principal_msat - r.principal_paid_msat for r in rows) == loan.principal_outstanding_msat
    weights = database.read(lambda c: c.execute(select(notes.c.share_weight_msat).order_by(notes.c.id))
                            .scalars().all())
    assert weights == [10_400_867, 5_200_433]
    assert loan.shared_cash_msat == 0 and loan.prepayment == "reduce_term" and loan.aprc_bps == 2682
    database.dispose()
    engine.dispose()
    del date
