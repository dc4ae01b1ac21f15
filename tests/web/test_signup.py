"""Sign-up through the real app: the account, its ledger accounts and a session appear together, or nothing does."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.db.engine import Database
from marketplace.db.tables import accounts, sessions, users
from tests.web.support import PASSWORD, TestClient, row_counts, sign_up


def test_sign_up_creates_user_accounts_and_session(client: TestClient, database: Database) -> None:
    response = sign_up(client, "  Ada@Example.COM ", role="borrower", display_name="Ada")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    user = database.read(lambda conn: conn.execute(select(users)).one())
    assert (user.email, user.role, user.display_name) == ("ada@example.com", "borrower", "Ada")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    kinds = database.read(lambda conn: sorted(
        conn.execute(select(accounts.c.kind).where(accounts.c.user_id == user.id)).scalars()))
    assert kinds == ["user_available", "user_pending_out", "user_reserved"]
    assert database.read(lambda conn: conn.execute(select(sessions.c.user_id)).scalar_one()) == user.id
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "Hello, Ada" in page.text


def test_display_name_defaults_to_the_email_name(client: TestClient, database: Database) -> None:
    assert sign_up(client, "grace@example.com").status_code == 303
    assert database.read(lambda conn: conn.execute(select(users.c.display_name)).scalar_one()) == "grace"


def test_duplicate_email_is_refused_and_stores_nothing(client: TestClient, settings: object, database: Database) -> None:
    assert sign_up(client, "ada@example.com").status_code == 303
    client.cookies.clear()
    before = row_counts(database)
    response = sign_up(client, "ADA@example.com ", password="another password")
    assert response.status_code == 409
    assert "already exists" in response.text
    assert 'value="ADA@example.com "' in response.text  # the email comes back, as typed
    assert "another password" not in response.text
    assert row_counts(database) == before


MALFORMED = ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com",
                                                "ada@@example.com", "ada@exa_mple.com", "ada@example..com", "ad\x00a@example.com",
             "x" * 65 + "@example.com", "a@" + "b" * 250 + ".com"]


def test_malformed_email_is_refused(client: TestClient, database: Database) -> None:
    before = row_counts(database)
    for email in MALFORMED:
        response = sign_up(client, email)
        assert response.status_code == 422, email
        assert "email" in response.text.lower()
    assert row_counts(database) == before


def test_short_password_is_refused(client: TestClient, database: Database) -> None:
    before = row_counts(database)
    response = sign_up(client, "ada@example.com", password="123456789")
    assert response.status_code == 422
    assert "at least 10 characters" in response.text
    assert 'value="ada@example.com"' in response.text
    assert "123456789" not in response.text
    assert row_counts(database) == before


def test_ten_character_password_is_enough(client: TestClient) -> None:
    assert sign_up(client, "ada@example.com", password="0123456789").status_code == 303


def test_only_lender_or_borrower_can_sign_up(client: TestClient, database: Database) -> None:
    before = row_counts(database)
    for role in ("operator", "admin", "", "LENDER"):
        assert sign_up(client, "ada@example.com", role=role).status_code == 422
    assert row_counts(database) == before


def test_overlong_or_unshowable_fields_are_refused(client: TestClient, database: Database) -> None:
    before = row_counts(database)
    for email, password, name in [
        ("a" * 400 + "@example.com", PASSWORD, ""),
        ("ada@example.com", "p" * 2000, ""),
        ("ada@example.com", PASSWORD, "n" * 65),
        ("ada@example.com", PASSWORD, "evil\u202ename"),
    ]:
        assert sign_up(client, email, password, display_name=name).status_code == 422
    assert row_counts(database) == before


def test_missing_fields_are_refused(client: TestClient, database: Database) -> None:
    from tests.web.support import csrf_token

    before = row_counts(database)
    response = client.post("/signup", data={"csrf_token": csrf_token(client, "/signup")})
    assert response.status_code == 422
    assert row_counts(database) == before


def test_signup_form_renders_role_choice(client: TestClient) -> None:
    page = client.get("/signup")
    assert 'name="role" value="lender"' in page.text
    assert 'name="role" value="borrower"' in page.text
    assert 'value="operator"' not in page.text
