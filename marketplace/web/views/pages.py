"""The pages a signed-in or visiting person reads first: the home page and the dashboard."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from marketplace.domain.users import Role
from marketplace.services import dashboards, loan_views, notice_board, public_figures
from marketplace.services import loans as loan_service
from marketplace.services.lightning_calls import reading
from marketplace.web.rendering import render
from marketplace.web.sessions import current_user, require_role
from marketplace.web.state import STATIC_DIR, database_of, settings_of

FAVICON = STATIC_DIR / "favicon.svg"
HOME_REQUESTS = 3


async def home(request: Request) -> Response:
    """Anyone: what Microlend is, a few open requests, the marketplace's own record, and how to start."""
    today = loan_service.utc_today()

    def read(conn: Connection) -> tuple[Any, Any]:
        return loan_views.open_requests(conn, 1).requests[:HOME_REQUESTS], public_figures.figures(conn, today)

    requests, figures = await reading(database_of(request), read)
    await current_user(request)
    return await render(request, "home.html", {"open_requests": requests, "figures": figures})


async def dashboard(request: Request) -> Response:
    user = await require_role(request, Role.LENDER, Role.BORROWER, Role.OPERATOR)
    settings = settings_of(request)
    today = loan_service.utc_today()

    def read(conn: Connection) -> dict[str, Any]:
        found: dict[str, Any] = {"notices": notice_board.board(conn, user.id), "lender": None, "borrower": None,
                                 "today": today}
        if user.role is Role.LENDER:
            found["lender"] = dashboards.lender_dashboard(conn, settings, user.id)
            found["balances"] = found["lender"].money
        elif user.role is Role.BORROWER:
            found["borrower"] = dashboards.borrower_dashboard(conn, settings, user.id, today)
            found["balances"] = found["borrower"].money
        else:
            found["balances"] = dashboards.money_of(conn, user.id)
        return found

    return await render(request, "dashboard.html", await reading(database_of(request), read))


@lru_cache(maxsize=1)
def _favicon() -> bytes:
    return FAVICON.read_bytes()


async def favicon(request: Request) -> Response:
    """Every browser asks for /favicon.ico; a small SVG (modern browsers take SVG under any name)."""
    return Response(_favicon(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
