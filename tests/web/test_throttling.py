"""Failed sign-ins slow down the one who fails (by account and address), and never the account's owner.

Issue 10: five wrong passwords used to lock an account for 15 minutes for
everyone, its owner with the right password included, so anyone could keep any
account locked. Now an (account, address) pair waits a growing delay after a
few failures, an address that fails a lot is capped, and an address that has
not been failing is never refused.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import Connection, select, update

from marketplace.db.engine import Database
from marketplace.db.tables import signin_failures
from marketplace.domain.errors import InvalidCredentials, SignInThrottled
from marketplace.services import accounts
from marketplace.services.auth import as_utc, authenticate
from marketplace.settings import Settings
from tests.web.support import PASSWORD, TestClient, failure_count, make_client, row_counts, sign_in

ATTACKER = ("198.51.100.66", 4000)
OWNER = ("203.0.113.9", 4000)


def _limited(settings: Settings) -> Settings:
    return settings.replace(signin_free_failures=3, signin_delay_s=30, signin_failures_per_address=8,
                            signin_failures_per_account=6, signin_window_s=600)


def _age(database: Database, seconds: int) -> None:
    """As if every failure so far had happened `seconds` earlier (in Python: SQLite has no date arithmetic)."""
    def shift(conn: Connection) -> None:
        for row in conn.execute(select(signin_failures.c.id, signin_failures.c.at)).all():
            conn.execute(update(signin_failures).where(signin_failures.c.id == row.id)
                         .values(at=as_utc(row.at) - timedelta(seconds=seconds)))
    database.run(shift)


def _wrong(client: TestClient, email: str = "ada@example.com") -> int:
    status: int = sign_in(client, email, "wrong password").status_code
    return status


def test_the_attacker_waits_growing_delays_and_the_owner_signs_in(settings: Settings, database: Database) -> None:
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database, client=ATTACKER) as attacker, \
            make_client(settings, database, client=OWNER) as owner:
        assert [_wrong(attacker) for _ in range(3)] == [401, 401, 401]  # the free failures
        waits = []
        for _ in range(3):
            refused = sign_in(attacker, "ada@example.com", "wrong password")
            assert refused.status_code == 429
            assert "Too many failed sign-ins of this account from your network address" in refused.text
            waits.append(int(refused.headers["Retry-After"]))
            _age(database, waits[-1])  # wait exactly as long as told: the next guess is allowed...
            assert _wrong(attacker) == 401  # ...and fails, so the next wait is longer
        assert waits[0] >= 1 and waits[0] < waits[1] < waits[2]
        assert waits == [30, 60, 120]
        # The right password from the attacker's address waits too: it has been failing.
        before = row_counts(database), failure_count(database)
        blocked = sign_in(attacker, "ada@example.com")
        assert blocked.status_code == 429 and "ml_session" not in blocked.cookies
        assert (row_counts(database), failure_count(database)) == before
        # The owner, from an address that has not been failing, is never refused.
        assert sign_in(owner, "ada@example.com").status_code == 303
        assert owner.get("/dashboard").status_code == 200


def test_an_address_failing_on_many_accounts_is_capped(settings: Settings, database: Database) -> None:
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database, client=ATTACKER) as attacker:
        for n in range(8):
            assert _wrong(attacker, f"guess{n}@example.com") == 401  # a fresh pair each time: no delay
        refused = sign_in(attacker, "ada@example.com")
        assert refused.status_code == 429
        assert "Too many failed sign-ins from your network address" in refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 600
    with make_client(settings, database, client=OWNER) as owner:
        assert sign_in(owner, "ada@example.com").status_code == 303
    _age(database, 601)  # the failures leave the window: the address may try again
    with make_client(settings, database, client=ATTACKER) as attacker:
        assert sign_in(attacker, "ada@example.com").status_code == 303


def test_an_account_under_attack_gives_failing_addresses_no_free_tries(settings: Settings,
                                                                       database: Database) -> None:
    """Many addresses guessing one password each: after the alarm, each failing address waits at once."""
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    bots = [make_client(settings, database, client=(f"192.0.2.{n}", 5000)).__enter__() for n in range(1, 8)]
    try:
        assert [_wrong(bot) for bot in bots[:6]] == [401] * 6  # six failures: the account is on alert
        assert _wrong(bots[0]) == 429  # a bot that failed before: no second free guess
        assert _wrong(bots[6]) == 401  # a new address still gets its one guess, and is counted
        with make_client(settings, database, client=OWNER) as owner:
            assert sign_in(owner, "ada@example.com").status_code == 303  # the owner: never refused
    finally:
        for bot in bots:
            bot.__exit__(None, None, None)


def test_a_success_takes_back_only_its_own_mark(settings: Settings, database: Database) -> None:
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    with make_client(settings, database, client=OWNER) as client:
        assert [_wrong(client) for _ in range(2)] == [401, 401]  # the owner mistyped twice
        assert sign_in(client, "ada@example.com").status_code == 303
        assert failure_count(database) == 2  # the two mistakes still count for this address
        assert _wrong(client) == 401  # the third free failure
        assert sign_in(client, "ada@example.com").status_code == 429  # now even the owner waits here


def test_limit_holds_under_parallel_guesses(settings: Settings, database: Database) -> None:
    """Attempts are counted before the (slow) password check, so a burst cannot overshoot."""
    settings = _limited(settings)
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")

    def attempt(n: int) -> str:
        try:
            authenticate(database, settings, "ada@example.com", f"guess {n}", "10.0.0.1")
        except InvalidCredentials:
            return "wrong"
        except SignInThrottled:
            return "throttled"
        return "ok"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("wrong") == 3
    assert outcomes.count("throttled") == 13
