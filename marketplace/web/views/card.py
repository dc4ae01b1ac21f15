"""The printable repayment card: `/loans/<id>/card`, for the loan's borrower and the operator."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketplace.domain.users import Role
from marketplace.services import lnurl as lnurl_service
from marketplace.web.params import path_id
from marketplace.web.qr import pay_code_qr_svg
from marketplace.web.rendering import render
from marketplace.web.sessions import require_role
from marketplace.web.state import database_of
from marketplace.web.views.lnurl import site_of


async def card_page(request: Request) -> Response:
    user = await require_role(request, Role.BORROWER, Role.OPERATOR)
    loan_id = path_id(request, "loan_id", "loan")
    site = site_of(request)
    card = await run_in_threadpool(lnurl_service.repayment_card, database_of(request), site, loan_id, user.id,
                                   user.role == Role.OPERATOR)
    return await render(request, "loans/card.html", {"card": card, "qr_svg": pay_code_qr_svg(card.code.lnurl)})


def card_routes() -> list[BaseRoute]:
    return [Route("/loans/{loan_id}/card", card_page, methods=["GET"], name="loan_card")]
