"""Per-user API tokens: made on the settings page, shown once, stored only as a sha256.

A token authenticates as its user for the JSON API (`Authorization: Bearer ml_...`).
`last_used_at` is written at most once a minute per token, so a busy client does
not turn every read into a write.
"""
from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, func, insert, select, update

from marketplace.db.engine import Database
from marketplace.db.tables import api_tokens, users
from marketplace.domain.errors import Conflict, InvalidInput, NotFound
from marketplace.domain.users import Role
from marketplace.services.auth import SessionUser
from marketplace.domain.messages import N_

TOKEN_PREFIX = "ml_"
SHOWN_PREFIX_LENGTH = 11  # "ml_" and 8 characters: enough to tell tokens apart, useless to guess with
NAME_LENGTH_MAX = 64  # the api_tokens.name column width
TOKEN_LENGTH_MAX = 128
ACTIVE_TOKENS_MAX = 20
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedToken:
    id: int
    name: str
    prefix: str
    token: str  # the plaintext: shown to its owner once, never stored


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def normalize_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput(N_("Give the token a name, like “my lending bot”, so you can tell it apart later."))
    if len(name) > NAME_LENGTH_MAX:
        raise InvalidInput(N_("The token name is too long (at most %(most)s characters).", most=NAME_LENGTH_MAX))
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in name):
        raise InvalidInput(N_("The token name contains characters that cannot be shown."))
    return name


def create_token(database: Database, user_id: int, name: str, *, now: datetime | None = None) -> CreatedToken:
    """A new token for the user; the plaintext is in the result and nowhere else."""
    clean = normalize_name(name)
    moment = now or datetime.now(timezone.utc)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = token[:SHOWN_PREFIX_LENGTH]

    def work(conn: Connection) -> int:
        active = conn.execute(select(func.count()).select_from(api_tokens).where(
            api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))).scalar_one()
        if int(active) >= ACTIVE_TOKENS_MAX:
            raise Conflict(N_("You already have %(count)s active tokens; revoke one first.", count=ACTIVE_TOKENS_MAX))
        result = conn.execute(insert(api_tokens).values(
            user_id=user_id, name=clean, token_hash=token_digest(token), prefix=prefix, created_at=moment,
            last_used_at=None, revoked_at=None))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])

    return CreatedToken(database.run(work), clean, prefix, token)


def list_tokens(database: Database, user_id: int) -> list[TokenInfo]:
    """The user's tokens, active ones first, newest first."""
    def work(conn: Connection) -> list[TokenInfo]:
        rows = conn.execute(select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.prefix,
                                   api_tokens.c.created_at, api_tokens.c.last_used_at, api_tokens.c.revoked_at)
                            .where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id.desc()))
        found = [TokenInfo(int(r.id), r.name, r.prefix, _utc(r.created_at) or r.created_at, _utc(r.last_used_at),
                           _utc(r.revoked_at)) for r in rows]
        return sorted(found, key=lambda t: not t.active)

    return database.read(work)


def revoke_token(database: Database, user_id: int, token_id: int, *, now: datetime | None = None) -> None:
    """Revoke one of the user's own tokens (again is fine); anyone else's is not found."""
    moment = now or datetime.now(timezone.utc)

    def work(conn: Connection) -> None:
        owner = conn.execute(select(api_tokens.c.user_id).where(api_tokens.c.id == token_id)).scalar()
        if owner is None or int(owner) != user_id:
            raise NotFound(N_("There is no such token."))
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                     .values(revoked_at=moment))

    database.run(work)


def looks_like_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 0 < len(token) <= TOKEN_LENGTH_MAX and token.isascii()


def authenticate(database: Database, token: str, *, now: datetime | None = None) -> SessionUser | None:
    """The user a live (unrevoked) token belongs to, or None."""
    if not looks_like_token(token):
        return None
    moment = now or datetime.now(timezone.utc)
    digest = token_digest(token)

    def lookup(conn: Connection) -> tuple[SessionUser, int, datetime | None] | None:
        row = conn.execute(
            select(users.c.id, users.c.email, users.c.role, users.c.display_name, api_tokens.c.id.label("token_id"),
                   api_tokens.c.last_used_at)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        user = SessionUser(int(row.id), row.email, Role(row.role), row.display_name)
        return user, int(row.token_id), _utc(row.last_used_at)

    found = database.read(lookup)
    if found is None:
        return None
    user, token_id, last_used = found
    if last_used is None or moment - last_used >= TOUCH_EVERY:
        database.run(lambda conn: conn.execute(
            update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=moment)))
    return user
