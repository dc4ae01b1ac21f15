"""Failed sign-ins are limited per account and per address, checked before the password."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from marketplace.db.engine import Database
from marketplace.db.tables import signin_failures
from marketplace.services import accounts
from marketplace.settings import Settings
from tests.web.support import PASSWORD, TestClient, failure_count, make_client, row_counts, sign_in


def _limited(settings: Settings) -> Settings:
    return settings.replace(signin_failures_per_account=3, signin_failures_per_address=5, signin_window_s=600)


def test_account_is_limited_after_n_failures(settings: Settings, database: Database) -> None:
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database) as client:
        for _ in range(3):
            assert sign_in(client, "ada@example.com", "wrong password").status_code == 401
        before = row_counts(database), failure_count(database)
        refused = sign_in(client, "ada@example.com")  # the right password, too late
        assert refused.status_code == 429
        assert "Too many failed sign-ins for this account" in refused.text
        assert "Try again in 10 minutes" in refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 600
        assert "ml_session" not in refused.cookies
        assert (row_counts(database), failure_count(database)) == before
    # From another address the account is still closed: the limit follows the account.
    with make_client(settings, database, client=("203.0.113.9", 4000)) as elsewhere:
        assert sign_in(elsewhere, "ada@example.com").status_code == 429


def test_account_opens_again_when_failures_leave_the_window(settings: Settings, database: Database) -> None:
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database) as client:
        for _ in range(3):
            sign_in(client, "ada@example.com", "wrong password")
        assert sign_in(client, "ada@example.com").status_code == 429
        database.run(lambda conn: conn.execute(
            update(signin_failures).values(at=signin_failures.c.at - timedelta(seconds=601))))
        assert sign_in(client, "ada@example.com").status_code == 303


def test_address_is_limited_across_accounts(settings: Settings, database: Database) -> None:
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database, client=("198.51.100.7", 1234)) as client:
        for n in range(5):
            assert sign_in(client, f"guess{n}@example.com", "wrong password").status_code == 401
        refused = sign_in(client, "ada@example.com")
        assert refused.status_code == 429
        assert "your network address" in refused.text
    with make_client(settings, database, client=("192.0.2.1", 1234)) as other:
        assert sign_in(other, "ada@example.com").status_code == 303


def test_success_does_not_erase_the_address_count(settings: Settings, database: Database) -> None:
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database, client=("198.51.100.8", 1234)) as client:
        for n in range(4):
            sign_in(client, f"guess{n}@example.com", "wrong password")
        assert sign_in(client, "ada@example.com").status_code == 303
        assert failure_count(database) == 4
        assert sign_in(client, "guess9@example.com", "wrong password").status_code == 401
        assert sign_in(client, "ada@example.com").status_code == 429


def test_limit_holds_under_parallel_guesses(settings: Settings, database: Database) -> None:
    """Attempts are counted before the (slow) password check, so a burst cannot overshoot."""
    from concurrent.futures import ThreadPoolExecutor

    from marketplace.domain.errors import InvalidCredentials, SignInThrottled
    from marketplace.services.auth import authenticate

    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")

    def attempt(n: int) -> str:
        try:
            authenticate(database, settings, "ada@example.com", f"guess {n}", f"10.0.0.{n}")
        except InvalidCredentials:
            return "wrong"
        except SignInThrottled:
            return "throttled"
        return "ok"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("wrong") == 3
    assert outcomes.count("throttled") == 13
