"""The pages a signed-in or visiting person reads."""
from __future__ import annotations

from functools import lru_cache

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from marketplace.domain.users import Role
from marketplace.services import accounts
from marketplace.services.notices import notices_for
from marketplace.web.rendering import render
from marketplace.web.sessions import require_role
from marketplace.web.state import STATIC_DIR, database_of

FAVICON = STATIC_DIR / "favicon.svg"


async def home(request: Request) -> Response:
    return await render(request, "home.html")


async def dashboard(request: Request) -> Response:
    user = await require_role(request, Role.LENDER, Role.BORROWER, Role.OPERATOR)
    balances = await run_in_threadpool(accounts.balances_of, database_of(request), user.id)
    notices = await run_in_threadpool(notices_for, database_of(request), user.id)
    return await render(request, "dashboard.html", {"balances": balances, "notices": notices})


@lru_cache(maxsize=1)
def _favicon() -> bytes:
    return FAVICON.read_bytes()


async def favicon(request: Request) -> Response:
    """Every browser asks for /favicon.ico; a small SVG (modern browsers take SVG under any name)."""
    return Response(_favicon(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
