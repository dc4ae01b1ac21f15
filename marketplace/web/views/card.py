"""The printable repayment card: `/loans/<id>/card`, for the loan's borrower and the operator."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketplace.db import loans as loan_rows
from marketplace.domain.errors import Conflict
from marketplace.domain.users import Role
from marketplace.services import lnurl as lnurl_service
from marketplace.services.lightning_calls import reading
from marketplace.web.params import path_id
from marketplace.web.qr import pay_code_qr_svg
from marketplace.web.rendering import render
from marketplace.web.sessions import require_role
from marketplace.services import offers as offer_service
from marketplace.web.lightning import lightning_of
from marketplace.web.state import database_of
from marketplace.web.views.lnurl import site_of
from marketplace.domain.messages import N_


async def card_page(request: Request) -> Response:
    user = await require_role(request, Role.BORROWER, Role.OPERATOR)
    loan_id = path_id(request, "loan_id", "loan")
    site = site_of(request)
    try:
        card = await run_in_threadpool(lnurl_service.repayment_card, database_of(request), site, loan_id, user.id,
                                       user.role == Role.OPERATOR)
    except Conflict:
        # Said in the page's terms: a request still funding or waiting to be paid out has no card yet.
        loan = await reading(database_of(request), lambda c: loan_rows.get_loan(c, loan_id))
        if loan.status in ("funding", "funded"):
            raise Conflict(N_("The repayment card is ready once the loan is paid out.")) from None
        raise
    offer = await offer_service.loan_offer(database_of(request), lightning_of(request).port, card.loan_id)
    return await render(request, "loans/card.html", {"card": card, "qr_svg": pay_code_qr_svg(card.code.lnurl),
                                                     "offer": offer})


def card_routes() -> list[BaseRoute]:
    return [Route("/loans/{loan_id}/card", card_page, methods=["GET"], name="loan_card")]
