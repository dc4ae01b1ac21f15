"""LNURL-pay for wallets: the Lightning Address's payRequest and its callback (LUD-06, LUD-16).

No session and no CSRF (GET only, nothing but an invoice is made): the
handle in the path is the authority. Every refusal is LUD-06's error form,
`{"status": "ERROR", "reason": ...}`, with a 4xx (a node that is down: 503).
"""
from __future__ import annotations

import re

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from marketplace.domain.errors import InvalidInput, Refusal
from marketplace.services import lnurl as lnurl_service
from marketplace.services.lnurl import Site
from marketplace.web.security import client_address
from marketplace.web.lightning import lightning_of
from marketplace.web.state import database_of, settings_of
from marketplace.domain.messages import N_
from marketplace.web.i18n import say

# Browser wallets fetch these from other origins (LUD-01 asks for it).
_CORS = {"Access-Control-Allow-Origin": "*"}
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


class NoPublicAddress(Refusal):
    """503: in production mode, pay codes need MICROLEND_PUBLIC_URL (never the request's Host header)."""

    code = "no_public_address"
    status = 503


def site_of(conn: HTTPConnection) -> Site:
    """The configured public address, else (embedded mode only) the one this request came to (https when the
    app says so). In production a Host header is anyone's to send: a pay code built on it could send a
    borrower's payers to someone else's callback, so without MICROLEND_PUBLIC_URL pay codes are refused."""
    settings = settings_of(conn)
    if settings.public_url:
        return Site.of(settings.public_url)
    if not settings.is_embedded:
        raise NoPublicAddress(N_("Pay codes are not available: this marketplace's public address is not set "
                                 "(the operator sets MICROLEND_PUBLIC_URL)."))
    host = conn.url.netloc
    if not _HOST.fullmatch(host):
        raise InvalidInput(N_("This request names no host a Lightning Address can be made for."))
    scheme = "https" if settings.https else conn.url.scheme
    return Site.of(f"{scheme}://{host}")


def lud06_error(refusal: Refusal) -> Response:
    headers = dict(_CORS)
    retry = getattr(refusal, "retry_after_s", None)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    status = refusal.status if 400 <= refusal.status < 600 else 400
    return JSONResponse({"status": "ERROR", "reason": say(refusal)}, status_code=status, headers=headers)


async def pay_request(request: Request) -> Response:
    try:
        answer = await lnurl_service.pay_request(database_of(request), site_of(request),
                                                 str(request.path_params["name"]))
    except Refusal as refusal:
        return lud06_error(refusal)
    return JSONResponse(answer.as_json(), headers=_CORS)


async def callback(request: Request) -> Response:
    amounts = request.query_params.getlist("amount")
    try:
        if len(amounts) > 1:
            raise InvalidInput(N_("Send one amount, not several."))
        row = await lnurl_service.pay_invoice(
            database_of(request), lightning_of(request).port, settings_of(request), site_of(request),
            str(request.path_params["name"]), amounts[0] if amounts else None, address=client_address(request))
    except Refusal as refusal:
        return lud06_error(refusal)
    return JSONResponse({"pr": row.bolt11, "routes": []}, headers=_CORS)


def lnurl_routes() -> list[BaseRoute]:
    return [
        Route("/.well-known/lnurlp/{name}", pay_request, methods=["GET"], name="lnurlp_pay_request"),
        Route("/lnurlp/{name}/callback", callback, methods=["GET"], name="lnurlp_callback"),
    ]
