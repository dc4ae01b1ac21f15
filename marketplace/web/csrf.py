"""CSRF: a token bound to a cookie the attacker's site can neither read nor set.

Signed in, the token is an HMAC of the session token's hash, and only that
token is accepted: a token minted before sign-in (an HMAC of the random
anonymous `ml_csrf` cookie) is worth nothing once a session exists, and the
anonymous cookie is dropped at sign-in and sign-out. Over https both cookies
carry the `__Host-` prefix, so a sibling subdomain cannot plant one. The
middleware checks every state-changing request before any handler runs, so no
route can forget to.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.datastructures import FormData, Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketplace.domain.errors import BodyTooLarge, Forbidden, Refusal
from marketplace.services.auth import SessionUser, token_hash
from marketplace.web.errors import refusal_response
from marketplace.web.forms import parse_form
from marketplace.web.params import declared_length
from marketplace.web.security import is_secure
from marketplace.web.sessions import cookie_name, current_user, session_token
from marketplace.web.state import settings_of
from marketplace.domain.messages import N_

ANON_COOKIE = "ml_csrf"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_SIZE_MAX = 64 * 1024  # forms here are a few fields; anything bigger is not ours
_COOKIE_LENGTH_MAX = 128
_TOO_LARGE = N_("That request is too large (at most %(kib)s KiB).", kib=BODY_SIZE_MAX // 1024)
EXPIRED_MESSAGE = N_("Your form has expired or did not come from this site; reload the page and try again.")
EXPIRED = str(EXPIRED_MESSAGE)  # the English, as tests and logs look for it


class CsrfRejected(Forbidden):
    code = "csrf_failed"


def _mac(secret_key: str, message: str) -> str:
    return hmac.new(secret_key.encode(), message.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def session_csrf_token(secret_key: str, session_token_value: str) -> str:
    return _mac(secret_key, "csrf:" + token_hash(session_token_value))


def anon_csrf_token(secret_key: str, cookie_value: str) -> str:
    return _mac(secret_key, "csrf-anon:" + cookie_value)


def _anon_cookie(conn: HTTPConnection) -> str | None:
    value = conn.cookies.get(cookie_name(conn, ANON_COOKIE))
    return value if value and len(value) <= _COOKIE_LENGTH_MAX else None


async def accepted_token(conn: HTTPConnection) -> str | None:
    """The one token this browser's cookies vouch for: the session's when signed in, else the anonymous one.

    Never both: an anonymous token taken before sign-in (or planted with its
    cookie) must not work for a signed-in user.
    """
    secret = settings_of(conn).secret_key
    session = session_token(conn)
    if session is not None and await current_user(conn) is not None:
        return session_csrf_token(secret, session)
    anon = _anon_cookie(conn)
    return None if anon is None else anon_csrf_token(secret, anon)


def mask(token: str) -> str:
    """A fresh disguise of the token for each page (random pad + token XOR pad).

    Pages are sent gzip-compressed; a token that looked the same on every page
    could be guessed byte by byte from compressed sizes (BREACH).
    """
    raw = bytes.fromhex(token)
    pad = secrets.token_bytes(len(raw))
    return (pad + bytes(a ^ b for a, b in zip(raw, pad))).hex()


def unmask(submitted: str) -> str:
    try:
        data = bytes.fromhex(submitted)
    except ValueError:
        return ""
    half = len(data) // 2
    if len(data) != 64:
        return ""
    return bytes(a ^ b for a, b in zip(data[half:], data[:half])).hex()


async def token_is_valid(conn: HTTPConnection, submitted: str) -> bool:
    given = unmask(submitted[:256]).encode()
    expected = await accepted_token(conn)
    return bool(given) and expected is not None and hmac.compare_digest(given, expected.encode())


def csrf_token_for(conn: HTTPConnection, user: SessionUser | None) -> tuple[str, str | None]:
    """The token to embed in a page, and a new `ml_csrf` cookie value if one must be set."""
    secret = settings_of(conn).secret_key
    session = session_token(conn)
    if user is not None and session is not None:
        return mask(session_csrf_token(secret, session)), None
    existing = _anon_cookie(conn)
    if existing is not None:
        return mask(anon_csrf_token(secret, existing)), None
    fresh: str | None = getattr(conn.state, "new_anon_csrf", None)
    if fresh is None:
        fresh = secrets.token_urlsafe(32)
        conn.state.new_anon_csrf = fresh
    return mask(anon_csrf_token(secret, fresh)), fresh


def set_anon_cookie(response: Response, conn: HTTPConnection, value: str) -> None:
    # A browser-session cookie: it lives until sign-in (or a closed browser).
    response.set_cookie(cookie_name(conn, ANON_COOKIE), value, path="/", secure=is_secure(conn), httponly=True,
                        samesite="lax")


def clear_anon_cookie(response: Response, conn: HTTPConnection) -> None:
    """At sign-in and sign-out: the anonymous token pair must not outlive the change of who is signed in."""
    response.delete_cookie(cookie_name(conn, ANON_COOKIE), path="/", secure=is_secure(conn), httponly=True,
                           samesite="lax")


class CsrfMiddleware:
    """Buffers a state-changing request's (small) body, checks its token, then replays the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS or _api_without_session(scope):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(scope, receive)
            replay = _replayer(body, receive)
            request = Request(scope, replay)
            submitted = request.headers.get(HEADER)
            if submitted is None:
                form: FormData = await parse_form(request)
                value = form.get(FORM_FIELD)
                submitted = value if isinstance(value, str) else ""
            if not await token_is_valid(request, submitted):
                raise CsrfRejected(EXPIRED_MESSAGE)
        except Refusal as refusal:
            await refusal_response(Request(scope), refusal)(scope, receive, send)
            return
        await self.app(scope, _replayer(body, receive), send)


def _api_without_session(scope: Scope) -> bool:
    """An API call that carries a bearer token and no session cookie: the token is its only credential.

    A cross-site page cannot set `Authorization`, so CSRF has nothing to ride on;
    with a session cookie present the CSRF token is still required.
    """
    path: str = scope.get("path", "")
    if not (path == "/api" or path.startswith("/api/")):
        return False
    conn = HTTPConnection(scope)
    scheme = conn.headers.get("authorization", "").strip().partition(" ")[0]
    return scheme.lower() == "bearer" and session_token(conn) is None


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    declared = declared_length(Headers(scope=scope))
    if declared is not None and declared > BODY_SIZE_MAX:
        raise BodyTooLarge(_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; let the app see an empty body
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > BODY_SIZE_MAX:
            raise BodyTooLarge(_TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replayer(body: bytes, then: Receive) -> Receive:
    """Hands out the buffered body once, then defers to the real channel (for disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
