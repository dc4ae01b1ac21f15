"""Per-user API tokens: made on the settings page, shown once, stored only as a sha256.

A token authenticates as its user for the JSON API (`Authorization: Bearer ml_...`).
Every token ends (`expires_at`, at most `api_token_lifetime_days` after it was made)
and has a scope: 'full', or 'read' (GET only). Signing out everywhere and changing
the password revoke them all.
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
from marketplace.domain.numbers import strict_id
from marketplace.domain.users import Role
from marketplace.services.auth import SessionUser
from marketplace.domain.messages import N_

TOKEN_PREFIX = "ml_"
SHOWN_PREFIX_LENGTH = 11  # "ml_" and 8 characters: enough to tell tokens apart, useless to guess with
NAME_LENGTH_MAX = 64  # the api_tokens.name column width
TOKEN_LENGTH_MAX = 128
ACTIVE_TOKENS_MAX = 20
TOUCH_EVERY = timedelta(minutes=1)
SCOPES = ("full", "read")


@dataclass(frozen=True)
class CreatedToken:
    id: int
    name: str
    prefix: str
    token: str  # the plaintext: shown to its owner once, never stored
    scope: str = "full"
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TokenUser:
    """Who a token acts for, and what it may do."""

    user: SessionUser
    scope: str

    @property
    def read_only(self) -> bool:
        return self.scope == "read"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = None
    scope: str = "full"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > datetime.now(timezone.utc))


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


def parse_scope(raw: str) -> str:
    scope = raw.strip().lower() or "full"
    if scope not in SCOPES:
        raise InvalidInput(N_("A token's scope is “full” or “read”."))
    return scope


def parse_lifetime_days(raw: str, most: int) -> int:
    """Days a new token lives: blank means the most allowed; ASCII digits from 1 to `most`."""
    text = raw.strip(" \t")  # ASCII blanks only: a no-break space is not a digit's padding
    if not text:
        return most
    value = strict_id(text)
    if value is None or value > most:
        raise InvalidInput(N_("A token lives from 1 to %(most)s days.", most=most))
    return value


def create_token(database: Database, user_id: int, name: str, *, now: datetime | None = None,
                 scope: str = "full", lifetime_days: int = 90) -> CreatedToken:
    """A new token for the user; the plaintext is in the result and nowhere else. It ends after
    `lifetime_days`; a 'read' token may only read."""
    clean = normalize_name(name)
    scope = parse_scope(scope)
    moment = now or datetime.now(timezone.utc)
    expires_at = moment + timedelta(days=lifetime_days)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = token[:SHOWN_PREFIX_LENGTH]

    def work(conn: Connection) -> int:
        active = conn.execute(select(func.count()).select_from(api_tokens).where(
            api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None),
            (api_tokens.c.expires_at.is_(None)) | (api_tokens.c.expires_at > moment))).scalar_one()
        if int(active) >= ACTIVE_TOKENS_MAX:
            raise Conflict(N_("You already have %(count)s active tokens; revoke one first.", count=ACTIVE_TOKENS_MAX))
        result = conn.execute(insert(api_tokens).values(
            user_id=user_id, name=clean, token_hash=token_digest(token), prefix=prefix, created_at=moment,
            last_used_at=None, revoked_at=None, expires_at=expires_at, scope=scope))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])

    return CreatedToken(database.run(work), clean, prefix, token, scope, expires_at)


def list_tokens(database: Database, user_id: int) -> list[TokenInfo]:
    """The user's tokens, active ones first, newest first."""
    def work(conn: Connection) -> list[TokenInfo]:
        rows = conn.execute(select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.prefix,
                                   api_tokens.c.created_at, api_tokens.c.last_used_at, api_tokens.c.revoked_at,
                                   api_tokens.c.expires_at, api_tokens.c.scope)
                            .where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id.desc()))
        found = [TokenInfo(int(r.id), r.name, r.prefix, _utc(r.created_at) or r.created_at, _utc(r.last_used_at),
                           _utc(r.revoked_at), _utc(r.expires_at), r.scope) for r in rows]
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


def revoke_all(conn: Connection, user_id: int, now: datetime) -> None:
    """Inside the caller's transaction: every live token of the user stops working."""
    conn.execute(update(api_tokens).where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
                 .values(revoked_at=now))


def authenticate(database: Database, token: str, *, now: datetime | None = None) -> TokenUser | None:
    """The user a live (unrevoked, unexpired) token belongs to, with the token's scope; or None."""
    if not looks_like_token(token):
        return None
    moment = now or datetime.now(timezone.utc)
    digest = token_digest(token)

    def lookup(conn: Connection) -> tuple[TokenUser, int, datetime | None] | None:
        row = conn.execute(
            select(users.c.id, users.c.email, users.c.role, users.c.display_name, api_tokens.c.id.label("token_id"),
                   api_tokens.c.last_used_at, api_tokens.c.scope)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None),
                   api_tokens.c.expires_at.is_(None) | (api_tokens.c.expires_at > moment))
        ).first()
        if row is None:
            return None
        user = SessionUser(int(row.id), row.email, Role(row.role), row.display_name)
        return TokenUser(user, str(row.scope)), int(row.token_id), _utc(row.last_used_at)

    found = database.read(lookup)
    if found is None:
        return None
    holder, token_id, last_used = found
    if last_used is None or moment - last_used >= TOUCH_EVERY:
        database.run(lambda conn: conn.execute(
            update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=moment)))
    return holder
