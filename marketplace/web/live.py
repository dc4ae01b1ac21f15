"""Live status of an invoice page by server-sent events, not by the browser asking every second.

The page holds one EventSource (static/live.js). The server looks at the invoice's state every
`POLL_S` (a primary-key read, in this process, costing the phone nothing) and sends the status
fragment only when the state changes; a paid (final) state is sent once and the stream ends. While
nothing changes the wire carries a 7-byte comment every `HEARTBEAT_S` so proxies keep the connection,
and the stream is closed after `LIFETIME_S` (the browser reconnects after `RETRY_MS`): about
1.5 KB of headers per reconnect, so a page left waiting costs well under 2 KB a minute
(measured by tests/browser/test_tasks.py), against ~96 KB a minute for a poll each second.

`since` (the state the page was rendered in) lets a stream opened after the payment landed send the
new state at once.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from marketplace.web.csrf import csrf_token_for
from marketplace.web.sessions import current_user
from marketplace.web.state import templates_of

POLL_S = 0.1  # "Paid" on screen within ~100 ms of the listener's commit, plus one render
HEARTBEAT_S = 25.0
LIFETIME_S = 600.0
RETRY_MS = 3000

Snapshot = Callable[[], Awaitable[tuple[str, bool]]]  # (state key, final)
Fragment = Callable[[], Awaitable[str]]


async def render_text(request: Request, name: str, context: Mapping[str, Any]) -> str:
    """A template as text, with what every page sees (the user, the CSRF token for its forms)."""
    user = await current_user(request)
    token, _ = csrf_token_for(request, user)
    template = templates_of(request).env.get_template(name)
    return template.render({"request": request, "user": user, "csrf_token": token, **context})


def _event(name: str, html: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


async def _events(since: str, snapshot: Snapshot, fragment: Fragment, lifetime_s: float) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    started = last_sent = time.monotonic()
    seen = since
    while True:
        key, final = await snapshot()
        if key != seen:
            seen = key
            yield _event("status", await fragment())
            last_sent = time.monotonic()
            if final:
                return
        now = time.monotonic()
        if now - started >= lifetime_s:
            return
        if now - last_sent >= HEARTBEAT_S:
            yield b": keep\n\n"
            last_sent = now
        await anyio.sleep(POLL_S)


def wants_stream(request: Request) -> bool:
    """An EventSource asks for `text/event-stream`; anything else (a link followed, a crawler, a test client
    reading the whole body) gets the fragment once instead of a stream that does not end."""
    return "text/event-stream" in request.headers.get("accept", "")


def event_stream(request: Request, snapshot: Snapshot, fragment: Fragment,
                 lifetime_s: float = LIFETIME_S) -> StreamingResponse:
    since = request.query_params.get("since", "")[:32]
    return StreamingResponse(_events(since, snapshot, fragment, lifetime_s), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
