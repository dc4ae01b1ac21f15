"""API tokens end and may be read-only; "sign out everywhere"; changing the password (issue 21, finding 7).

Tokens had no expiry or scope and survived signing out, and there was no way
to change a password.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from marketplace.db.engine import Database
from marketplace.db.tables import users
from marketplace.services import accounts, api_tokens
from marketplace.settings import Settings
from tests.web.support import PASSWORD, TestClient, csrf_token, make_client, sign_in

NEW_PASSWORD = "a much better passphrase"


def _me(client: TestClient, token: str) -> int:
    status: int = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
    return status


def test_tokens_expire_and_a_read_token_only_reads(settings: Settings, database: Database) -> None:
    user_id = accounts.create_user(database, settings, "tia@example.org", PASSWORD, "lender", "Tia")
    made = api_tokens.create_token(database, user_id, "reader", scope="read", lifetime_days=1)
    assert made.expires_at is not None and made.scope == "read"
    with make_client(settings, database) as client:
        assert _me(client, made.token) == 200
        bearer = {"Authorization": f"Bearer {made.token}"}
        refused = client.post("/api/v1/deposits", json={"amount_sat": 1000}, headers=bearer)
        assert refused.status_code == 403 and "may only read" in refused.json()["error"]["message"]
        refused = client.put("/api/v1/autoinvest", json={"enabled": False, "budget_msat": 0}, headers=bearer)
        assert refused.status_code == 403
    later = datetime.now(timezone.utc) + timedelta(days=1, seconds=1)
    assert api_tokens.authenticate(database, made.token, now=later) is None
    [listed] = api_tokens.list_tokens(database, user_id)
    assert listed.expires_at is not None and listed.expires_at <= later


def test_tokens_made_on_the_settings_page_have_a_scope_and_an_end(settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "tia@example.org", PASSWORD, "lender", "Tia")
    with make_client(settings, database) as client:
        assert sign_in(client, "tia@example.org").status_code == 303
        token = csrf_token(client, "/settings")
        too_long = client.post("/settings/tokens", data={"csrf_token": token, "name": "bot", "scope": "read",
                                                         "days": str(settings.api_token_lifetime_days + 1)})
        assert too_long.status_code == 422 and "from 1 to" in too_long.text
        for days in ("\u00a030", "-1", "0", "٣"):
            bad = client.post("/settings/tokens", data={"csrf_token": token, "name": "bot", "days": days})
            assert bad.status_code == 422, days
        made = client.post("/settings/tokens", data={"csrf_token": token, "name": "bot", "scope": "read",
                                                     "days": "7"})
        assert made.status_code == 200 and "only reads" in made.text
        [listed] = api_tokens.list_tokens(database, _user_id(database))
        assert listed.scope == "read" and listed.expires_at is not None
        assert timedelta(days=6) < listed.expires_at - listed.created_at <= timedelta(days=7)


def _user_id(database: Database) -> int:
    return int(database.read(lambda c: c.execute(select(users.c.id).where(users.c.email == "tia@example.org"))
                             .scalar_one()))


def test_sign_out_everywhere_ends_every_session_and_token(settings: Settings, database: Database) -> None:
    user_id = accounts.create_user(database, settings, "tia@example.org", PASSWORD, "lender", "Tia")
    token = api_tokens.create_token(database, user_id, "bot").token
    with make_client(settings, database) as phone, make_client(settings, database) as laptop:
        assert sign_in(phone, "tia@example.org").status_code == 303
        assert sign_in(laptop, "tia@example.org").status_code == 303
        done = laptop.post("/settings/signout-everywhere", data={"csrf_token": csrf_token(laptop, "/settings")},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/signin"
        for client in (phone, laptop):
            assert client.get("/dashboard", follow_redirects=False).status_code == 303
        phone.cookies.clear()
        assert _me(phone, token) == 401


def test_changing_the_password_ends_other_sessions_and_tokens(settings: Settings, database: Database) -> None:
    user_id = accounts.create_user(database, settings, "tia@example.org", PASSWORD, "lender", "Tia")
    token = api_tokens.create_token(database, user_id, "bot").token
    with make_client(settings, database) as phone, make_client(settings, database) as laptop:
        assert sign_in(phone, "tia@example.org").status_code == 303
        assert sign_in(laptop, "tia@example.org").status_code == 303
        wrong = laptop.post("/settings/password", data={"csrf_token": csrf_token(laptop, "/settings"),
                                                        "current_password": "not it", "new_password": NEW_PASSWORD})
        assert wrong.status_code == 401 and "current password is not right" in wrong.text
        short = laptop.post("/settings/password", data={"csrf_token": csrf_token(laptop, "/settings"),
                                                        "current_password": PASSWORD, "new_password": "short"})
        assert short.status_code == 422
        assert _me(TestClient(phone.app), token) == 200  # nothing changed yet
        done = laptop.post("/settings/password", data={"csrf_token": csrf_token(laptop, "/settings"),
                                                       "current_password": PASSWORD, "new_password": NEW_PASSWORD},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/settings?done=password"
        assert laptop.get("/settings").status_code == 200  # this browser stays signed in (a new session)
        assert phone.get("/dashboard", follow_redirects=False).status_code == 303  # the other one ended
        phone.cookies.clear()
        assert _me(phone, token) == 401
        assert sign_in(phone, "tia@example.org", PASSWORD).status_code == 401
        assert sign_in(phone, "tia@example.org", NEW_PASSWORD).status_code == 303
