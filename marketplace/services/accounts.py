"""Creating users (web sign-up and the operator bootstrap command) and reading their balances."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from marketplace.db.engine import Database
from marketplace.db.ledger import open_user_accounts, user_balances
from marketplace.db.tables import signup_attempts, users
from marketplace.domain.emails import normalize_email
from marketplace.domain import languages
from marketplace.domain.errors import EmailTaken, InvalidInput, SignUpThrottled
from marketplace.domain.journal import AccountKind
from marketplace.domain.passwords import check_new_password
from marketplace.domain.users import Role, normalize_display_name, parse_role
from marketplace.domain.throttling import retry_after, wait_message
from marketplace.services.auth import ADDRESS_LENGTH_MAX, SignedIn, SessionUser, as_utc, open_session, utc_now
from marketplace.services.password_pool import password_pool
from marketplace.settings import Settings
from marketplace.domain.messages import N_

_TAKEN = N_("An account with this email already exists; sign in instead.")
# Any constant: the PostgreSQL advisory lock that orders sign-up counts.
_SIGNUP_LOCK_KEY = 0x6D6C5F7369676F  # "ml_sigo"


@dataclass(frozen=True)
class NewUser:
    email: str
    password_hash: str
    role: Role
    display_name: str


@dataclass(frozen=True)
class Balances:
    available_msat: int
    reserved_msat: int
    pending_msat: int  # held for withdrawals in flight


def _checked(email: str, password: str, role: Role | str, display_name: str) -> tuple[str, Role, str]:
    """The cheap checks, before any hashing: normalized email, role and display name."""
    normalized = normalize_email(email)
    check_new_password(password)
    checked_role = role if isinstance(role, Role) else parse_role(role)
    return normalized, checked_role, normalize_display_name(display_name, normalized)


def prepare_user(settings: Settings, email: str, password: str, role: Role | str, display_name: str) -> NewUser:
    """Validate and hash (through the bounded pool), outside any transaction (hashing is slow by design)."""
    normalized, checked_role, name = _checked(email, password, role, display_name)
    with password_pool(settings).ticket() as ticket:
        return NewUser(normalized, ticket.hash(password), checked_role, name)


def create_user(
    database: Database, settings: Settings, email: str, password: str, role: Role | str,
    display_name: str = "",
) -> int:
    """A new user and their ledger accounts, in one transaction. Refuses EmailTaken, InvalidInput."""
    new = prepare_user(settings, email, password, role, display_name)
    return database.run(lambda conn: _insert_user(conn, new, utc_now()))


def sign_up(
    database: Database, settings: Settings, email: str, password: str, role: Role | str,
    display_name: str, address: str, previous_token: str | None = None,
) -> SignedIn:
    """Create the user and sign them in (a new session), all in one transaction.

    Refused before any hashing: a form that does not check out (InvalidInput),
    a busy pool (HashingBusy), an address with too many sign-ups lately
    (SignUpThrottled; the attempt is counted first, so a burst cannot slip past).
    """
    normalized, checked_role, name = _checked(email, password, role, display_name)
    address = address[:ADDRESS_LENGTH_MAX]
    with password_pool(settings).ticket() as ticket:
        database.run(lambda conn: _count_signup(conn, settings, address, utc_now()))
        new = NewUser(normalized, ticket.hash(password), checked_role, name)
    now = utc_now()
    token = secrets.token_urlsafe(32)

    def work(conn: Connection) -> SessionUser:
        user_id = _insert_user(conn, new, now)
        open_session(conn, settings, user_id, token, address, previous_token, now)
        return SessionUser(user_id, new.email, new.role, new.display_name)

    user = database.run(work)
    return SignedIn(user, token, now + timedelta(seconds=settings.session_lifetime_s))


def check_signup_throttle(database: Database, settings: Settings, address: str) -> None:
    """Refuse (SignUpThrottled), reading only, a sign-up the address limit refuses: before the hashing gate."""
    address = address[:ADDRESS_LENGTH_MAX]
    now = utc_now()
    window = timedelta(seconds=settings.signup_window_s)

    def check(conn: Connection) -> None:
        times = [as_utc(at) for at in conn.execute(select(signup_attempts.c.at).where(
            signup_attempts.c.address == address, signup_attempts.c.at > now - window)).scalars()]
        _refuse_if_waiting(retry_after(times, settings.signup_per_address, window, now))

    database.read(check)


async def sign_up_through_gate(
    database: Database, settings: Settings, email: str, password: str, role: Role | str,
    display_name: str, address: str, previous_token: str | None = None,
) -> SignedIn:
    """The web's sign-up: the address limit first, then one place in the hashing gate (a few per address)."""
    await anyio.to_thread.run_sync(lambda: check_signup_throttle(database, settings, address))
    return await password_pool(settings).run(sign_up, database, settings, email, password, role, display_name,
                                             address, previous_token, address=address[:ADDRESS_LENGTH_MAX])


def _refuse_if_waiting(wait: timedelta | None) -> None:
    if wait is not None:
        raise SignUpThrottled(
            N_("Too many accounts were made from your network address lately. Try again %(wait)s.",
               wait=wait_message(wait)),
            retry_after_s=int(-(-wait.total_seconds() // 1)))


def _count_signup(conn: Connection, settings: Settings, address: str, now: datetime) -> None:
    """Refuse when `address` started `signup_per_address` sign-ups in the window; else count this one."""
    if conn.dialect.name == "postgresql":
        # As for sign-in: READ COMMITTED would let a burst all count N-1 and all pass.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SIGNUP_LOCK_KEY})
    window = timedelta(seconds=settings.signup_window_s)
    times = [as_utc(at) for at in conn.execute(
        select(signup_attempts.c.at).where(signup_attempts.c.address == address, signup_attempts.c.at > now - window)
    ).scalars()]
    _refuse_if_waiting(retry_after(times, settings.signup_per_address, window, now))
    # Old attempts of this address are no use any more; the table stays as small as the window.
    conn.execute(delete(signup_attempts).where(signup_attempts.c.address == address,
                                               signup_attempts.c.at <= now - window))
    conn.execute(insert(signup_attempts).values(address=address, at=now))


def count_users(database: Database) -> int:
    return database.read(lambda conn: int(conn.execute(select(func.count()).select_from(users)).scalar_one()))


def balances_of(database: Database, user_id: int) -> Balances:
    """The user's own balances; the caller passes the signed-in user's id, never one from a URL."""
    found = database.read(lambda conn: user_balances(conn, user_id))
    return Balances(
        available_msat=found.get(AccountKind.USER_AVAILABLE, 0),
        reserved_msat=found.get(AccountKind.USER_RESERVED, 0),
        pending_msat=found.get(AccountKind.USER_PENDING_OUT, 0),
    )


def _insert_user(conn: Connection, new: NewUser, now: datetime) -> int:
    if conn.execute(select(users.c.id).where(users.c.email == new.email)).first() is not None:
        raise EmailTaken(_TAKEN)
    try:
        result = conn.execute(insert(users).values(
            email=new.email, password_hash=new.password_hash, role=new.role.value,
            display_name=new.display_name, created_at=now,
        ))
    except IntegrityError:
        # Lost a race with a concurrent sign-up for the same email; the transaction rolls back.
        raise EmailTaken(_TAKEN) from None
    pk = result.inserted_primary_key
    assert pk is not None
    user_id = int(pk[0])
    open_user_accounts(conn, user_id)
    return user_id


def set_language(database: Database, user_id: int, raw: str) -> str | None:
    """Store the language a person chose for the pages ('' : follow the browser); the stored value."""
    language = languages.supported(raw)
    if raw.strip() and language is None:
        raise InvalidInput(N_("Choose one of the languages offered."))
    database.run(lambda conn: conn.execute(update(users).where(users.c.id == user_id).values(language=language)))
    return language
