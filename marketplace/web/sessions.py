"""The session cookie, the signed-in user of a request, and role checks for handlers."""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from marketplace.domain.errors import Forbidden, SignInRequired
from marketplace.domain.users import Role
from marketplace.services.auth import SessionUser, session_user
from marketplace.web.security import is_secure
from marketplace.web.state import database_of, settings_of
from marketplace.domain.messages import N_

SESSION_COOKIE = "ml_session"
# Over https every cookie takes this prefix: the browser then accepts it only with Secure, Path=/ and no
# Domain, so no sibling subdomain (or plain-http page) can plant or overwrite it.
SECURE_PREFIX = "__Host-"
# Longer than any real token (token_urlsafe(32) is 43 characters): not worth a database look-up.
_TOKEN_LENGTH_MAX = 128
_UNRESOLVED = object()


def cookie_name(conn: HTTPConnection, name: str) -> str:
    """`name`, or `__Host-name` when the app is served over https."""
    return SECURE_PREFIX + name if is_secure(conn) else name


def session_token(conn: HTTPConnection) -> str | None:
    token = conn.cookies.get(cookie_name(conn, SESSION_COOKIE))
    if not token or len(token) > _TOKEN_LENGTH_MAX:
        return None
    return token


async def current_user(conn: HTTPConnection) -> SessionUser | None:
    """Looked up once per request, then kept on the request state."""
    cached = getattr(conn.state, "user", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cached if isinstance(cached, SessionUser) else None
    token = session_token(conn)
    user = None if token is None else await run_in_threadpool(session_user, database_of(conn), token)
    conn.state.user = user
    return user


async def require_role(conn: HTTPConnection, *roles: Role) -> SessionUser:
    """The signed-in user if they hold one of `roles`; SignInRequired (401) or Forbidden (403)."""
    user = await current_user(conn)
    if user is None:
        raise SignInRequired(N_("Sign in to see this page."))
    if roles and user.role not in roles:
        raise Forbidden(N_("Your account cannot open this page."))
    return user


Handler = Callable[[Request], Awaitable[Response]]


def requires_role(*roles: Role) -> Callable[[Handler], Handler]:
    """Decorator form of `require_role`; the handler finds the user on `request.state.user`."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            await require_role(request, *roles)
            return await handler(request)

        return guarded

    return decorate


def set_session_cookie(response: Response, conn: HTTPConnection, token: str) -> None:
    response.set_cookie(
        cookie_name(conn, SESSION_COOKIE), token, max_age=settings_of(conn).session_lifetime_s, path="/",
        secure=is_secure(conn), httponly=True, samesite="lax",
    )


def clear_session_cookie(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(cookie_name(conn, SESSION_COOKIE), path="/", secure=is_secure(conn), httponly=True, samesite="lax")
