"""Ending every way in at once: "sign out everywhere", and changing the password (which does the same).

A stolen session cookie or API token works until it is revoked: these let the
person revoke all of them without knowing which was stolen. Changing the
password checks the current one exactly as a sign-in does (same limits, same
hashing gate), then ends every other session and every API token, and gives
this browser a fresh session.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

import anyio.to_thread
from sqlalchemy import Connection, update

from marketplace.db.engine import Database
from marketplace.db.tables import sessions, users
from marketplace.domain.errors import InvalidCredentials
from marketplace.domain.passwords import PASSWORD_LENGTH_MAX, check_new_password
from marketplace.services.api_tokens import revoke_all as revoke_all_tokens
from marketplace.services.auth import ADDRESS_LENGTH_MAX, SessionUser, authenticate, check_signin_throttle, open_session
from marketplace.services.password_pool import password_pool
from marketplace.settings import Settings
from marketplace.domain.messages import N_


def _end_everything(conn: Connection, user_id: int, now: datetime) -> None:
    conn.execute(update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                 .values(revoked_at=now))
    revoke_all_tokens(conn, user_id, now)


def sign_out_everywhere(database: Database, user_id: int, *, now: datetime | None = None) -> None:
    """Every session of the person (this one too) and every API token stop working."""
    moment = now or datetime.now(timezone.utc)
    database.run(lambda conn: _end_everything(conn, user_id, moment))


def change_password(database: Database, settings: Settings, user: SessionUser, current: str, new: str,
                    address: str) -> str:
    """Check `current` as a sign-in would, store `new`, end every session and token; a new session token."""
    check_new_password(new)
    if len(current) > PASSWORD_LENGTH_MAX:
        raise InvalidCredentials(N_("Your current password is not right."))
    try:
        authenticate(database, settings, user.email, current, address)
    except InvalidCredentials:
        raise InvalidCredentials(N_("Your current password is not right.")) from None
    with password_pool(settings).ticket() as ticket:
        new_hash = ticket.hash(new)
    token = secrets.token_urlsafe(32)
    moment = datetime.now(timezone.utc)

    def work(conn: Connection) -> None:
        conn.execute(update(users).where(users.c.id == user.id).values(password_hash=new_hash))
        _end_everything(conn, user.id, moment)
        open_session(conn, settings, user.id, token, address, None, moment)

    database.run(work)
    return token


async def change_password_through_gate(database: Database, settings: Settings, user: SessionUser, current: str,
                                       new: str, address: str) -> str:
    """As `change_password`, for the web: the sign-in limits first, then a place in the hashing gate."""
    check_new_password(new)
    await anyio.to_thread.run_sync(lambda: check_signin_throttle(database, settings, user.email, address))
    return await password_pool(settings).run(change_password, database, settings, user, current, new, address,
                                             address=address[:ADDRESS_LENGTH_MAX])
