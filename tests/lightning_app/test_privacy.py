"""A borrower's data: the export, and erasure once no loan of theirs is open, with the ledger verified by
`microlend ledger verify` before and after, and the lenders' statements untouched."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
from sqlalchemy import select

from marketplace.db import loans as loan_rows
from marketplace.db.engine import Database
from marketplace.db.tables import installments, journal_entries, loans, repayments, sessions, users
from marketplace.domain.journal import AccountKind
from marketplace.services import accounts, api_tokens, withdrawals
from marketplace.services import loans as loan_service
from marketplace.services.lightning_calls import NodeFacts
from marketplace.services.statements import all_lines
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.reach_support import BORROWER_NAME, STORY, active_loan
from tests.lightning_app.test_deposit_withdraw import balances, wait_for
from tests.web.support import PASSWORD, TestClient, csrf_token, sign_in, sign_up

SECRET_COLUMNS = ("password_hash", "token_hash", "id_hash")


def ledger_verify(db_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console command an auditor runs, as a real process on the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROLEND_")}
    env["MICROLEND_DATABASE_URL"] = db_url
    return subprocess.run([sys.executable, "-m", "marketplace.cli", "ledger", "verify"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def hashed_fields(database: Database) -> str:
    """Every field the hash chain covers besides numbers: kinds, idempotency keys, memos."""
    rows = database.read(lambda c: c.execute(select(journal_entries.c.kind, journal_entries.c.idempotency_key,
                                                    journal_entries.c.memo, journal_entries.c.hash)).all())
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def erase(client: TestClient, confirm: str) -> httpx.Response:
    response: httpx.Response = client.post("/settings/erase", data={"csrf_token": csrf_token(client, "/settings"), "confirm": confirm},
                       follow_redirects=False)
    return response


def test_export_then_erasure_once_repaid_keeps_the_books_whole(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode,
        db_url: str, tmp_path: Path) -> None:
    client = app_client
    loan = active_loan(database, node_settings, devnode_session, "privacy")
    assert sign_in(client, loan.borrower_email).status_code == 303
    token = api_tokens.create_token(database, loan.borrower_id, "my phone").token
    assert client.get("/settings").status_code == 200 and "Erase my data" in client.get("/settings").text

    # The export: everything about the borrower, no secrets.
    exported = client.get("/settings/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    assert "attachment" in exported.headers["content-disposition"]
    data = json.loads(exported.text)
    assert data["account"]["email"] == loan.borrower_email and data["account"]["display_name"] == BORROWER_NAME
    assert data["account"]["role"] == "borrower" and data["account"]["erased_at"] is None
    [mine] = data["loans"]
    assert mine["id"] == loan.loan_id and mine["story"] == STORY and mine["status"] == "active"
    assert [i["number"] for i in mine["schedule"]] == [1, 2, 3, 4] and mine["repayments"] == []
    assert data["payments_out"][0]["purpose"] == "disbursement" and data["payments_out"][0]["bolt11"]
    assert isinstance(data["statement"], list) and data["balances_msat"]["user_available"] == 0
    assert len(data["sessions"]) >= 1 and data["sessions"][0]["address"]
    assert data["api_tokens"][0]["name"] == "my phone" and "token_hash" not in data["api_tokens"][0]
    for secret in SECRET_COLUMNS:
        assert secret not in exported.text
    assert token not in exported.text

    # Not while the loan is open: refused, nothing changed.
    refused = erase(client, "ERASE")
    assert refused.status_code == 409 and "is being repaid" in refused.text
    assert database.read(lambda c: c.execute(select(users.c.email).where(users.c.id == loan.borrower_id))
                         .scalar_one()) == loan.borrower_email

    # The borrower pays the loan off from their wallet, then pays a 25 sat invoice asked for earlier: a refund.
    port, wallet = devnode_session.adapter("marketplace"), devnode_session.adapter("wallet")
    payoff = database.read(lambda c: loan_rows.loan_state(c, loan_rows.get_loan(c, loan.loan_id))
                           .payoff_msat(loan_service.utc_today()))
    late = anyio.run(loan_service.repayment_invoice, database, port, node_settings, loan.borrower_id, loan.loan_id,
                     25_000)
    invoice = anyio.run(loan_service.repayment_invoice, database, port, node_settings, loan.borrower_id,
                        loan.loan_id, payoff)
    assert invoice.bolt11 is not None and late.bolt11 is not None
    anyio.run(wallet.pay, invoice.bolt11, None, 10_000, 10)
    wait_for(lambda: database.read(lambda c: c.execute(select(loans.c.status).where(loans.c.id == loan.loan_id))
                                   .scalar_one()) == "repaid", 15)
    anyio.run(wallet.pay, late.bolt11, None, 10_000, 10)
    wait_for(lambda: balances(database, loan.borrower_id)[AccountKind.USER_AVAILABLE] == 25_000, 15)
    held = erase(client, "ERASE")
    assert held.status_code == 409 and "You still hold 25 sat" in held.text
    # Withdrawn to the wallet (15 sat and the 10 sat fee reserve, unused on a direct channel and given back):
    # what is left is too little to withdraw, and does not stand in the way.
    target = anyio.run(wallet.create_invoice, 15_000, f"refund-{time.time_ns()}", "refund", 600)
    out = anyio.run(withdrawals.withdraw, database, port, NodeFacts(port), node_settings, loan.borrower_id,
                    target.bolt11, None)
    assert out.status == "succeeded", out.error
    assert balances(database, loan.borrower_id)[AccountKind.USER_AVAILABLE] == 10_000

    accounts.create_user(database, node_settings, "privacy-lender@example.org", PASSWORD, "lender", "Lia")
    # Before: the ledger verifies, and no hashed field ever held who the borrower is.
    before = ledger_verify(db_url, tmp_path)
    assert before.returncode == 0 and before.stdout.startswith("ledger OK"), before.stdout + before.stderr
    chain = hashed_fields(database)
    for private in (loan.borrower_email, BORROWER_NAME, "Rosa", STORY[:20], "my phone"):
        assert private not in chain
    lender_lines = {lender: database.read(lambda c, lender=lender: all_lines(c, lender)) for lender in loan.lender_ids}
    schedule = database.read(lambda c: c.execute(select(installments).where(
        installments.c.loan_id == loan.loan_id).order_by(installments.c.number)).all())
    paid = database.read(lambda c: c.execute(select(repayments).where(repayments.c.loan_id == loan.loan_id)).all())
    assert paid

    # A mistyped confirmation erases nothing.
    wrong = erase(client, "yes")
    assert wrong.status_code == 422 and "Type ERASE" in wrong.text
    session_cookie = client.cookies.get("ml_session")
    assert session_cookie

    done = erase(client, "erase")
    assert done.status_code == 200 and "Your data was erased" in done.text
    assert "10 sat was too little to withdraw" in done.text
    assert 'name="ml_session"' not in done.text and "Sign in" in done.text
    account = database.read(lambda c: c.execute(select(users).where(users.c.id == loan.borrower_id)).one())
    assert account.email.startswith("erased-") and account.email.endswith("@erased.invalid")
    assert account.display_name == "Erased borrower" and account.erased_at is not None
    stories = database.read(lambda c: c.execute(select(loans.c.story).where(
        loans.c.borrower_id == loan.borrower_id)).scalars().all())
    assert stories == [""]
    assert database.read(lambda c: c.execute(select(sessions).where(
        sessions.c.user_id == loan.borrower_id)).all()) == []

    # No way back in: the password, the old session cookie, the API token.
    assert sign_in(client, loan.borrower_email, PASSWORD).status_code == 401
    client.cookies.set("ml_session", session_cookie)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    client.cookies.clear()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    # After: the same chain, the same schedule and repayments, the lenders' statements as they were.
    after = ledger_verify(db_url, tmp_path)
    assert after.returncode == 0 and after.stdout == before.stdout, after.stdout + after.stderr
    assert hashed_fields(database) == chain
    assert database.read(lambda c: c.execute(select(installments).where(
        installments.c.loan_id == loan.loan_id).order_by(installments.c.number)).all()) == schedule
    assert database.read(lambda c: c.execute(select(repayments).where(
        repayments.c.loan_id == loan.loan_id)).all()) == paid
    for lender_id, lines in lender_lines.items():
        assert database.read(lambda c, lender_id=lender_id: all_lines(c, lender_id)) == lines

    # What anyone else (a lender here) sees of the loan: the numbers, no name, no story, no email.
    assert sign_in(client, "privacy-lender@example.org").status_code == 303
    page = client.get(f"/loans/{loan.loan_id}").text
    assert f"borrower #{loan.borrower_id}" in page and "repaid" in page
    for private in (BORROWER_NAME, "Rosa", STORY[:20], loan.borrower_email, "Erased borrower"):
        assert private not in page


def test_only_borrowers_erase_and_anyone_signed_in_can_export(app_client: TestClient) -> None:
    assert sign_up(app_client, "keeps-data@example.org", role="lender", display_name="Lou").status_code == 303
    assert "Erase my data" not in app_client.get("/settings").text
    refused = erase(app_client, "ERASE")
    assert refused.status_code == 403 and "for borrowers" in refused.text
    exported = json.loads(app_client.get("/settings/export").text)
    assert exported["account"]["display_name"] == "Lou" and exported["notes"] == [] and exported["loans"] == []
    app_client.cookies.clear()
    anonymous = app_client.get("/settings/export", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")
