"""Sign-in, sessions and their cookies, sign-out."""
from __future__ import annotations

import hashlib

from sqlalchemy import select, update

from marketplace.db.engine import Database
from marketplace.db.tables import sessions, users
from marketplace.services import accounts
from marketplace.settings import Settings
from tests.web.support import (
    PASSWORD, TestClient, csrf_token_in, failure_count, make_client, row_counts, sign_in, sign_out, sign_up,
)


def _session_rows(database: Database) -> list[tuple[str, object]]:
    return database.read(lambda conn: [(r.id_hash, r.revoked_at) for r in conn.execute(select(sessions))])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_sign_in_opens_a_session(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender", "Ada")
    response = sign_in(client, " ADA@example.com")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    token = response.cookies["ml_session"]
    assert [h for h, _ in _session_rows(database)] == [_digest(token)]  # only the hash is stored
    assert "Hello, Ada" in client.get("/dashboard").text
    assert "Go to your dashboard" in client.get("/").text


def test_session_cookie_flags(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    header = sign_in(client, "ada@example.com").headers["set-cookie"]
    assert header.startswith("ml_session=")
    flags = header.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert f"max-age={settings.session_lifetime_s}" in flags
    assert "secure" not in flags


def test_anonymous_csrf_cookie_flags(client: TestClient) -> None:
    header = client.get("/signin").headers["set-cookie"].lower()
    assert header.startswith("ml_csrf=") and "httponly" in header and "samesite=lax" in header


def test_cookies_are_secure_when_https_is_configured(settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings.replace(https=True), database) as client:
        page = client.get("/signin")
        assert "secure" in page.headers["set-cookie"].lower()
        # Over https the cookies take the __Host- prefix: no subdomain can plant or overwrite them.
        assert page.headers["set-cookie"].startswith("__Host-ml_csrf=")
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
        # httpx keeps Secure cookies off plain http://, as a browser would: send it by hand.
        cookie = f"__Host-ml_csrf={page.cookies['__Host-ml_csrf']}"
        token = csrf_token_in(page.text)
        unprefixed = client.post("/signin", data={"csrf_token": token, "email": "ada@example.com",
                                                  "password": PASSWORD},
                                 headers={"Cookie": cookie.removeprefix("__Host-")}, follow_redirects=False)
        assert unprefixed.status_code == 403  # a cookie without the prefix counts for nothing over https
        response = client.post("/signin", data={"csrf_token": token, "email": "ada@example.com",
                                                "password": PASSWORD},
                               headers={"Cookie": cookie}, follow_redirects=False)
        assert response.status_code == 303
        cookies = response.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("__Host-ml_session="))
        assert "secure" in session.lower() and "path=/" in session.lower() and "domain" not in session.lower()
        dropped = next(c for c in cookies if c.startswith("__Host-ml_csrf="))
        assert "max-age=0" in dropped.lower()  # the anonymous token pair ends at sign-in
        signed_in = client.get("/dashboard", headers={"Cookie": session.split(";")[0]}, follow_redirects=False)
        assert signed_in.status_code == 200


def test_cookies_are_secure_on_an_https_request(settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database, base_url="https://testserver") as client:
        response = sign_in(client, "ada@example.com")
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()


def test_sign_in_rotates_the_session(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    first = sign_in(client, "ada@example.com").cookies["ml_session"]
    second = sign_in(client, "ada@example.com").cookies["ml_session"]
    assert first != second
    revoked = {h: at for h, at in _session_rows(database)}
    assert revoked[_digest(first)] is not None and revoked[_digest(second)] is None
    client.cookies.set("ml_session", first)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_planted_session_cookie_is_revoked_at_sign_in(client: TestClient, settings: Settings,
                                                        database: Database) -> None:
    # An attacker's own session, fixed into the victim's browser, dies when the victim signs in.
    accounts.create_user(database, settings, "mallory@example.com", PASSWORD, "lender")
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    planted = sign_in(client, "mallory@example.com").cookies["ml_session"]
    sign_in(client, "ada@example.com")
    with make_client(settings, database) as attacker:
        attacker.cookies.set("ml_session", planted)
        assert attacker.get("/api/v1/me/balances").status_code == 401


def test_sign_out_revokes_the_session(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    token = sign_in(client, "ada@example.com").cookies["ml_session"]
    response = sign_out(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert 'ml_session=""' in response.headers["set-cookie"] or "max-age=0" in response.headers["set-cookie"].lower()
    assert all(at is not None for _, at in _session_rows(database))
    client.cookies.set("ml_session", token)  # a copy kept by someone else
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/me/balances").status_code == 401


def test_expired_session_is_not_accepted(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    sign_in(client, "ada@example.com")
    database.run(lambda conn: conn.execute(update(sessions).values(expires_at=sessions.c.created_at)))
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_wrong_password_is_refused(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    before = row_counts(database)
    response = sign_in(client, "ada@example.com", "wrong password!")
    assert response.status_code == 401
    assert "not right" in response.text
    assert 'value="ada@example.com"' in response.text and "wrong password!" not in response.text
    assert "ml_session" not in response.cookies
    assert row_counts(database) == before
    assert failure_count(database) == 1


def test_unknown_email_gets_the_same_answer(client: TestClient) -> None:
    response = sign_in(client, "nobody@example.com")
    assert response.status_code == 401
    assert "The email or the password is not right." in response.text


def test_successful_sign_in_leaves_no_failure_behind(client: TestClient, settings: Settings,
                                                    database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    sign_in(client, "ada@example.com")
    assert failure_count(database) == 0


def test_password_is_rehashed_when_parameters_change(settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    old = database.read(lambda conn: conn.execute(select(users.c.password_hash)).scalar_one())
    stronger = settings.replace(argon2_time_cost=2)
    with make_client(stronger, database) as client:
        assert sign_in(client, "ada@example.com").status_code == 303
    new = database.read(lambda conn: conn.execute(select(users.c.password_hash)).scalar_one())
    assert new != old and ",t=2," in new
    with make_client(stronger, database) as client:
        assert sign_in(client, "ada@example.com").status_code == 303


def test_sign_in_returns_to_a_safe_next_page(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "op@example.com", PASSWORD, "operator")
    redirect = client.get("/operator", follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"] == "/signin?next=%2Foperator"
    page = client.get(redirect.headers["location"])
    assert 'name="next" value="/operator"' in page.text
    assert sign_in(client, "op@example.com", next="/operator").headers["location"] == "/operator"


def test_sign_in_never_redirects_off_site(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        assert sign_in(client, "ada@example.com", next=target).headers["location"] == "/dashboard"


def test_sign_up_also_rotates_a_previous_session(client: TestClient, settings: Settings,
                                                 database: Database) -> None:
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    old = sign_in(client, "ada@example.com").cookies["ml_session"]
    assert sign_up(client, "bob@example.com").status_code == 303
    revoked = {h: at for h, at in _session_rows(database)}
    assert revoked[_digest(old)] is not None
