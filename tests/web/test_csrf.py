"""Every state-changing request needs a token bound to this browser's cookies."""
from __future__ import annotations

from marketplace.db.engine import Database
from marketplace.db.tables import invoices
from marketplace.services import accounts
from marketplace.settings import Settings
from marketplace.web.csrf import EXPIRED
from tests.web.support import (
    PASSWORD, TestClient, count, csrf_token, csrf_token_in, failure_count, row_counts, sign_in, sign_out)

SIGNUP = {"email": "ada@example.com", "password": PASSWORD, "role": "lender"}


def _assert_refused(response: object, database: Database, before: tuple[int, int]) -> None:
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert EXPIRED in response.text  # type: ignore[attr-defined]
    assert row_counts(database) == before


def test_missing_token_is_refused(client: TestClient, database: Database) -> None:
    client.get("/signup")  # has the anonymous cookie, but sends no token
    before = row_counts(database)
    for path in ("/signup", "/signin", "/signout"):
        _assert_refused(client.post(path, data=SIGNUP), database, before)
    assert failure_count(database) == 0


def test_wrong_token_is_refused(client: TestClient, database: Database) -> None:
    client.get("/signup")
    before = row_counts(database)
    for token in ("", "0" * 64, "not-a-token", "\u00e9\u00e8"):
        _assert_refused(client.post("/signup", data={**SIGNUP, "csrf_token": token}), database, before)
        _assert_refused(client.post("/signup", data=SIGNUP, headers={"X-CSRF-Token": token.encode()}),
                        database, before)


def test_token_without_its_cookie_is_refused(client: TestClient, database: Database) -> None:
    token = csrf_token(client, "/signup")
    client.cookies.clear()  # a forged cross-site post: right-looking token, no cookie to match
    before = row_counts(database)
    _assert_refused(client.post("/signup", data={**SIGNUP, "csrf_token": token}), database, before)


def test_another_browsers_token_is_refused(settings: Settings, database: Database, client: TestClient) -> None:
    from tests.web.support import make_client

    with make_client(settings, database) as other:
        foreign = csrf_token(other, "/signup")
    client.get("/signup")
    before = row_counts(database)
    _assert_refused(client.post("/signup", data={**SIGNUP, "csrf_token": foreign}), database, before)


def test_token_in_header_is_accepted(client: TestClient, database: Database) -> None:
    token = csrf_token(client, "/signup")
    response = client.post("/signup", data=SIGNUP, headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert response.status_code == 303


def test_wrong_token_in_header_wins_over_right_form_field(client: TestClient, database: Database) -> None:
    token = csrf_token(client, "/signup")
    response = client.post("/signup", data={**SIGNUP, "csrf_token": token}, headers={"X-CSRF-Token": "nope"})
    assert response.status_code == 403


def test_signed_in_token_is_bound_to_the_session(client: TestClient, settings: Settings,
                                                 database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    sign_in(client, "ada@example.com")
    first = csrf_token(client, "/dashboard")
    sign_in(client, "ada@example.com")  # a new session: the old page's token is dead
    response = client.post("/signout", data={"csrf_token": first})
    assert response.status_code == 403
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


def test_sign_out_without_token_keeps_the_session(client: TestClient, settings: Settings,
                                                  database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    sign_in(client, "ada@example.com")
    assert client.post("/signout").status_code == 403
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


def test_csrf_refusal_under_api_is_json(client: TestClient) -> None:
    response = client.post("/api/v1/me/balances")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


# --- issue 10: a token pair taken before sign-in is dead after it --------------------------------------------


def test_a_pre_sign_in_token_pair_does_not_work_for_a_signed_in_user(
        client: TestClient, settings: Settings, database: Database) -> None:
    """GET /signin gives cookie A and token tA; with the victim's session beside A, tA must not pass."""
    accounts.create_user(database, settings, "victim@example.com", PASSWORD, "lender")
    page = client.get("/signin")
    anon_cookie, anon_token = page.cookies["ml_csrf"], csrf_token_in(page.text)
    victim = sign_in(client, "victim@example.com").cookies["ml_session"]
    client.cookies.clear()
    client.cookies.set("ml_session", victim)
    client.cookies.set("ml_csrf", anon_cookie)
    before = count(database, invoices)
    response = client.post("/deposit", data={"csrf_token": anon_token, "amount_sat": "1000"},
                           follow_redirects=False)
    assert response.status_code == 403 and EXPIRED in response.text
    assert count(database, invoices) == before
    as_header = client.post("/api/v1/deposits", json={"amount_sat": 1000}, headers={"X-CSRF-Token": anon_token})
    assert as_header.status_code == 403 and as_header.json()["error"]["code"] == "csrf_failed"
    # The session's own token still works.
    assert client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")},
                       follow_redirects=False).status_code == 303


def test_sign_in_and_sign_out_drop_the_anonymous_cookie(client: TestClient, settings: Settings,
                                                         database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    first = client.get("/signin").cookies["ml_csrf"]
    signed_in = sign_in(client, "ada@example.com")
    assert any(c.startswith("ml_csrf=") and "max-age=0" in c.lower()
               for c in signed_in.headers.get_list("set-cookie"))
    assert "ml_csrf" not in client.cookies
    signed_out = sign_out(client)
    assert any(c.startswith("ml_csrf=") and "max-age=0" in c.lower()
               for c in signed_out.headers.get_list("set-cookie"))
    fresh = client.get("/signin").cookies["ml_csrf"]  # the next anonymous page mints a new pair
    assert fresh != first


def test_a_stale_session_cookie_leaves_the_anonymous_token_working(client: TestClient, settings: Settings,
                                                                   database: Database) -> None:
    """A revoked or expired session is no session: its browser is anonymous and its forms must still post."""
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    client.cookies.set("ml_session", "a-session-that-does-not-exist")
    token = csrf_token(client, "/signin")
    response = client.post("/signin", data={"csrf_token": token, "email": "ada@example.com", "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303
