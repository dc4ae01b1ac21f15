"""A person's own notices on their dashboard: marking one read (the listing is services/notices.py)."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from marketplace.domain.users import Role
from marketplace.services import notices as notice_service
from marketplace.web.forms import parse_form
from marketplace.web.params import path_id
from marketplace.web.rendering import render
from marketplace.web.sessions import require_role
from marketplace.web.state import database_of


async def mark_read(request: Request) -> Response:
    user = await require_role(request, Role.LENDER, Role.BORROWER, Role.OPERATOR)
    await parse_form(request)
    notice_id = path_id(request, "notice_id", "notice")
    notices = await run_in_threadpool(notice_service.mark_read, database_of(request), user.id, notice_id)
    if request.headers.get("hx-request"):
        return await render(request, "_notices.html", {"notices": notices})
    return RedirectResponse("/dashboard", status_code=303)


def notice_routes() -> list[Route]:
    return [Route("/notices/{notice_id}/read", mark_read, methods=["POST"], name="notice_read")]
