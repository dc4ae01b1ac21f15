"""Signing in and out: password checks, the failed-attempt limit, server-side sessions.

Password hashing is slow on purpose, so it always runs between transactions,
never inside one. A session cookie holds a random token; the database keeps
only its sha256, so a leaked table cannot be replayed as cookies.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, insert, select, text, update

from marketplace.db.engine import Database
from marketplace.db.tables import sessions, signin_failures, users
from marketplace.domain.emails import EMAIL_LENGTH_MAX, canonical_email
from marketplace.domain.errors import InvalidCredentials, SignInThrottled
from marketplace.domain.passwords import PASSWORD_LENGTH_MAX
from marketplace.domain.throttling import SignInPolicy, signin_wait, wait_message
from marketplace.domain.users import Role
from marketplace.services.password_pool import password_pool
from marketplace.settings import Settings
from marketplace.domain.messages import N_

ADDRESS_LENGTH_MAX = 64  # the sessions.address / signin_failures.address column width
_WRONG = N_("The email or the password is not right.")
# Any constant: the PostgreSQL advisory lock that orders sign-in throttle checks.
_THROTTLE_LOCK_KEY = 0x6D6C5F7369676E  # "ml_sign"


@dataclass(frozen=True)
class SessionUser:
    id: int
    email: str
    role: Role
    display_name: str
    language: str | None = None  # chosen on /settings; None follows the browser


@dataclass(frozen=True)
class _StoredUser:
    user: SessionUser
    password_hash: str


@dataclass(frozen=True)
class SignedIn:
    user: SessionUser
    token: str  # goes in the cookie; never stored
    expires_at: datetime


def password_hasher(settings: Settings) -> PasswordHasher:
    """The argon2id hasher of these settings; hash and verify through `password_pool(settings)` tickets."""
    return password_pool(settings).hasher




def signin_policy(settings: Settings) -> SignInPolicy:
    window = timedelta(seconds=settings.signin_window_s)
    return SignInPolicy(
        window=window, free_failures=settings.signin_free_failures,
        delay=timedelta(seconds=settings.signin_delay_s), delay_max=window,
        address_limit=settings.signin_failures_per_address, account_alarm=settings.signin_failures_per_account,
    )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def authenticate(
    database: Database, settings: Settings, email: str, password: str, address: str,
    *, now: datetime | None = None,
) -> SessionUser:
    """The user whose password this is, or a refusal (InvalidCredentials, SignInThrottled, HashingBusy).

    The limits (`signin_policy`: a growing delay per account and address, a cap
    per address) are checked, and this attempt counted as a failure, before the
    password is looked at; a correct password then takes its mark back. Counting
    first means parallel guesses cannot slip past the limit together. An address
    that has not been failing is never refused, whatever others do to the account.
    """
    now = now or utc_now()
    email = _storable(canonical_email(email))[:EMAIL_LENGTH_MAX]
    address = _storable(address)[:ADDRESS_LENGTH_MAX]
    pool = password_pool(settings)
    # The ticket first: a flood is refused (HashingBusy) before anything is counted or written.
    with pool.ticket() as ticket:
        attempt_id, found = database.run(lambda conn: _count_attempt(conn, settings, email, address, now))
        stored = found.password_hash if found is not None else ticket.decoy()
        right = len(password) <= PASSWORD_LENGTH_MAX and ticket.run(lambda: _verify(pool.hasher, stored, password))
        if not right or found is None:
            raise InvalidCredentials(_WRONG)
        new_hash = ticket.hash(password) if _needs_rehash(pool.hasher, stored) else None
    user = found.user
    database.run(lambda conn: _clear_attempt(conn, attempt_id, user.id, new_hash))
    return user


def start_session(
    database: Database, settings: Settings, user_id: int, address: str,
    previous_token: str | None = None, *, now: datetime | None = None,
) -> str:
    """A new session token for the user; any session the browser held before is revoked."""
    now = now or utc_now()
    token = secrets.token_urlsafe(32)
    database.run(lambda conn: open_session(conn, settings, user_id, token, address, previous_token, now))
    return token


def sign_in(
    database: Database, settings: Settings, email: str, password: str, address: str,
    previous_token: str | None = None,
) -> SignedIn:
    user = authenticate(database, settings, email, password, address)
    token = start_session(database, settings, user.id, address, previous_token)
    return SignedIn(user, token, utc_now() + timedelta(seconds=settings.session_lifetime_s))


def check_signin_throttle(database: Database, settings: Settings, email: str, address: str,
                          *, now: datetime | None = None) -> None:
    """Refuse (SignInThrottled), reading only, an attempt the limits refuse: run before the hashing gate, so
    attempts that would be refused anyway never take a place in it (one address's flood kept others out)."""
    moment = now or utc_now()
    email = _storable(canonical_email(email))[:EMAIL_LENGTH_MAX]
    address = _storable(address)[:ADDRESS_LENGTH_MAX]
    database.read(lambda conn: _check_throttle(conn, settings, email, address, moment))


async def sign_in_through_gate(database: Database, settings: Settings, email: str, password: str, address: str,
                               previous_token: str | None = None) -> SignedIn:
    """The web's sign-in: refused by address (and account and address) first, then one place in the gate.

    The gate holds at most `password_hash_per_address` attempts of one address; the count in `authenticate`
    still decides, so parallel attempts that all passed the first check cannot slip past the limit.
    """
    await anyio.to_thread.run_sync(lambda: check_signin_throttle(database, settings, email, address))
    return await password_pool(settings).run(sign_in, database, settings, email, password, address, previous_token,
                                             address=address[:ADDRESS_LENGTH_MAX])


def sign_out(database: Database, token: str, *, now: datetime | None = None) -> None:
    revoked_at = now or utc_now()
    database.run(lambda conn: _revoke(conn, token_hash(token), revoked_at))


def session_user(database: Database, token: str, *, now: datetime | None = None) -> SessionUser | None:
    """The user a live (unexpired, unrevoked) session token belongs to."""
    moment = now or utc_now()
    digest = token_hash(token)

    def lookup(conn: Connection) -> SessionUser | None:
        row = conn.execute(
            select(users.c.id, users.c.email, users.c.role, users.c.display_name, users.c.language)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(sessions.c.id_hash == digest, sessions.c.revoked_at.is_(None),
                   sessions.c.expires_at > moment)
        ).first()
        if row is None:
            return None
        return SessionUser(int(row.id), row.email, Role(row.role), row.display_name, row.language)

    return database.read(lookup)


def open_session(
    conn: Connection, settings: Settings, user_id: int, token: str, address: str,
    previous_token: str | None, now: datetime,
) -> None:
    """Inside the caller's transaction: rotate, so a planted pre-sign-in cookie is useless."""
    if previous_token:
        _revoke(conn, token_hash(previous_token), now)
    conn.execute(insert(sessions).values(
        id_hash=token_hash(token), user_id=user_id, created_at=now,
        expires_at=now + timedelta(seconds=settings.session_lifetime_s),
        revoked_at=None, address=address[:ADDRESS_LENGTH_MAX],
    ))


def _revoke(conn: Connection, digest: str, now: datetime) -> None:
    conn.execute(
        update(sessions)
        .where(sessions.c.id_hash == digest, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _check_throttle(conn: Connection, settings: Settings, email: str, address: str, now: datetime) -> None:
    """SignInThrottled when the limits refuse an attempt on `email` from `address` now."""
    policy = signin_policy(settings)
    since = now - policy.window
    recent = signin_failures.c.at > since
    from_address = [(as_utc(row.at), row.email) for row in conn.execute(
        select(signin_failures.c.at, signin_failures.c.email).where(signin_failures.c.address == address, recent))]
    on_account = int(conn.execute(
        select(func.count()).select_from(signin_failures).where(signin_failures.c.email == email, recent)
    ).scalar_one())
    throttled = signin_wait([at for at, e in from_address if e == email], [at for at, _ in from_address],
                            on_account, policy, now)
    if throttled is not None:
        wait = wait_message(throttled.wait)
        said = (N_("Too many failed sign-ins from your network address. Try again %(wait)s.", wait=wait)
                if throttled.by == "address" else
                N_("Too many failed sign-ins of this account from your network address. Try again %(wait)s.",
                   wait=wait))
        raise SignInThrottled(
            said,
            retry_after_s=int(-(-throttled.wait.total_seconds() // 1)),
        )


def _count_attempt(
    conn: Connection, settings: Settings, email: str, address: str, now: datetime
) -> tuple[int, _StoredUser | None]:
    if conn.dialect.name == "postgresql":
        # READ COMMITTED would let two attempts both count N-1 and both pass;
        # SQLite's BEGIN IMMEDIATE already serializes this transaction.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _THROTTLE_LOCK_KEY})
    _check_throttle(conn, settings, email, address, now)
    result = conn.execute(insert(signin_failures).values(email=email, address=address, at=now))
    pk = result.inserted_primary_key
    assert pk is not None
    row = conn.execute(
        select(users.c.id, users.c.email, users.c.role, users.c.display_name, users.c.password_hash)
        .where(users.c.email == email)
    ).first()
    if row is None:
        return int(pk[0]), None
    user = SessionUser(int(row.id), row.email, Role(row.role), row.display_name)
    return int(pk[0]), _StoredUser(user, row.password_hash)


def _clear_attempt(conn: Connection, attempt_id: int, user_id: int, new_hash: str | None) -> None:
    # Only this attempt's mark goes: earlier failures from the address still count.
    conn.execute(delete(signin_failures).where(signin_failures.c.id == attempt_id))
    if new_hash is not None:
        conn.execute(update(users).where(users.c.id == user_id).values(password_hash=new_hash))


def _storable(value: str) -> str:
    """Typed text as a key we can store and query on both databases.

    A sign-in email is not validated (it only has to match), but PostgreSQL
    refuses NUL in text and no driver accepts lone surrogates; such an email
    can never match an account, so a replacement character is as good.
    """
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        # surrogatepass: odd input must fail the comparison, not crash the encoder.
        return hasher.verify(stored, password.encode("utf-8", "surrogatepass"))
    except (VerificationError, InvalidHashError):
        return False


def _needs_rehash(hasher: PasswordHasher, stored: str) -> bool:
    try:
        return hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
