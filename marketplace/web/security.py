"""Response headers every page carries, and facts about the client a request came from."""
from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketplace.web.state import settings_of

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # frame-ancestors 'none' says it to today's browsers; older ones only understand this.
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Only when served over https (MICROLEND_HTTPS): a year, this host only (not its subdomains, which the
# operator may serve otherwise). Browsers ignore the header on plain http anyway.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def apply_security_headers(headers: MutableHeaders, path: str, https: bool) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if https:
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    # Pages show balances and carry CSRF tokens: no shared or back-button caches.
    if not path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


class SecurityHeadersMiddleware:
    """Pure ASGI (no body buffering): adds the headers to whatever response goes out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        https = settings_of(HTTPConnection(scope)).https

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                apply_security_headers(MutableHeaders(scope=message), path, https)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_address(conn: HTTPConnection) -> str:
    """The peer address: behind a proxy listed in MICROLEND_TRUSTED_PROXIES, the client it forwarded for
    (`serve` passes the list to uvicorn); anyone else's X-Forwarded-For is ignored."""
    return conn.client.host if conn.client is not None else "unknown"


def is_secure(conn: HTTPConnection) -> bool:
    return settings_of(conn).https or conn.url.scheme == "https"
