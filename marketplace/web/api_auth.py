"""Who is calling the JSON API: a bearer token, or (for the browser) the session cookie.

A request that carries `Authorization` is judged by it alone: a bad or revoked
token is a 401 even when a session cookie rides along. Without the header the
session decides, and the CSRF middleware still checks every state-changing
request that comes with a session cookie.
"""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from marketplace.domain.errors import Forbidden, Refusal, SignInRequired
from marketplace.domain.users import Role
from marketplace.services import api_tokens
from marketplace.services.auth import SessionUser
from marketplace.web.sessions import current_user
from marketplace.web.state import database_of
from marketplace.domain.messages import N_

AUTHORIZATION = "authorization"
_READING = ("GET", "HEAD", "OPTIONS")


class InvalidToken(Refusal):
    code = "invalid_token"
    status = 401


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer ...` header; None without the header."""
    header = conn.headers.get(AUTHORIZATION)
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise InvalidToken(N_("Send the API token as `Authorization: Bearer <token>`."))
    return value.strip()


# One sentence per set of roles, so each language names the roles in its own words.
_ONLY = {
    frozenset({"lender"}): N_("Only a lender account can do this."),
    frozenset({"borrower"}): N_("Only a borrower account can do this."),
    frozenset({"operator"}): N_("Only an operator account can do this."),
    frozenset({"lender", "borrower"}): N_("Only a lender or borrower account can do this."),
}


async def api_user(conn: HTTPConnection, *roles: Role) -> SessionUser:
    """The API caller if they hold one of `roles` (any role when none are named).

    Refusals: InvalidToken / SignInRequired (401), Forbidden (403).
    """
    user: SessionUser | None = getattr(conn.state, "api_user", None)
    if user is None:
        user = await _resolve(conn)
        conn.state.api_user = user
    if roles and user.role not in roles:
        wanted = frozenset(role.value for role in roles)
        raise Forbidden(_ONLY.get(wanted) or N_("Only a %(roles)s account can do this.", roles=" or ".join(sorted(wanted))))
    return user


async def _resolve(conn: HTTPConnection) -> SessionUser:
    token = bearer_token(conn)
    user: SessionUser | None
    if token is not None:
        holder = await run_in_threadpool(api_tokens.authenticate, database_of(conn), token)
        if holder is None:
            raise InvalidToken(N_("This API token is not valid: it is unknown, has expired or has been revoked."))
        if holder.read_only and conn.scope.get("method", "GET") not in _READING:
            raise Forbidden(N_("This API token may only read; make a token with full scope at /settings to "
                               "change anything."))
        user = holder.user
        conn.state.user = user  # handlers that ask `current_user` see the token's user
        conn.state.api_auth = "token"
    else:
        user = await current_user(conn)
        if user is None:
            raise SignInRequired(N_("Authenticate with `Authorization: Bearer <token>` (make a token at /settings)."))
        conn.state.api_auth = "session"
    return user
