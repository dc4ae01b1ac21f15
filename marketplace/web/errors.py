"""Every failure as a clear answer: an HTML page, or JSON under /api/, never a stack trace."""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from marketplace.domain.errors import Refusal, SignInRequired
from marketplace.domain.messages import Message, N_
from marketplace.web.i18n import reset_language, say, set_language
from marketplace.services.auth import SessionUser
from marketplace.web.sessions import current_user
from marketplace.web.security import apply_security_headers
from marketplace.web.state import settings_of, templates_of

log = logging.getLogger(__name__)
_LOAN_PATH = re.compile(r"^/loans/\d{1,18}")

_TITLES = {
    400: N_("The request could not be read"),
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not allowed here"),
    409: N_("This cannot be done now"),
    413: N_("Too large"),
    422: N_("Please check what you entered"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
    503: N_("Not available right now"),
}
_ERROR_TITLE = N_("Error")
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
_HTTP_MESSAGES = {
    404: N_("There is no page at this address."),
    405: N_("This address does not accept that kind of request."),
}
_SERVER_ERROR = N_("Something went wrong on our side. Nothing you did caused it; please try again in a moment.")


def is_api(conn: HTTPConnection) -> bool:
    return conn.url.path == "/api" or conn.url.path.startswith("/api/")


def error_response(
    request: Request, status: int, code: str, message: str | Message, headers: Mapping[str, str] | None = None,
    user: SessionUser | None = None,
) -> Response:
    """The refusal in the request's language: JSON under /api/, else the error page (with the signed-in
    header when `user` is given, so nobody seems signed out by a refusal)."""
    text = say(message)
    if is_api(request):
        return JSONResponse({"error": {"code": code, "message": text}}, status_code=status, headers=headers)
    from marketplace.web.csrf import csrf_token_for  # here: csrf.py itself answers its refusals through this module

    token = csrf_token_for(request, user)[0] if user is not None else ""
    context = {"title": say(_TITLES.get(status, _ERROR_TITLE)), "message": text, "status": status,
               "user": user, "csrf_token": token, "back": _way_back(request, status)}
    return templates_of(request).TemplateResponse(
        request, "error.html", context, status_code=status, headers=headers)


def _way_back(request: Request, status: int) -> str | None:
    """A refusal on a loan's own page (its card, its pay page) leads back to the loan."""
    found = _LOAN_PATH.match(request.url.path)
    if found and status != 404 and request.url.path != found.group(0):
        return found.group(0)
    return None


async def _signed_in(request: Request) -> SessionUser | None:
    """The person behind the request, for the error page's header; None when that itself fails."""
    if is_api(request):
        return None
    try:
        return await current_user(request)
    except Exception:  # an error page must render even when the session store is what failed
        return None


def retry_after_headers(refusal: Refusal | None) -> dict[str, str]:
    """A refusal that says when to come back (429: throttled, busy, too many open invoices): Retry-After."""
    wait = getattr(refusal, "retry_after_s", None)
    return {"Retry-After": str(wait)} if isinstance(wait, int) else {}


def refusal_response(request: Request, refusal: Refusal, user: SessionUser | None = None) -> Response:
    if isinstance(refusal, SignInRequired) and not is_api(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/signin?" + urlencode({"next": target}), status_code=303)
    return error_response(request, refusal.status, refusal.code, refusal.text, retry_after_headers(refusal),
                          user=user)


async def handle_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    return refusal_response(request, exc, await _signed_in(request))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message: str | Message = _HTTP_MESSAGES.get(status) or (exc.detail if isinstance(exc.detail, str) else "")
    return error_response(request, status, _HTTP_CODES.get(status, f"http_{status}"), message, exc.headers,
                          user=await _signed_in(request))


async def handle_server_error(request: Request, exc: Exception) -> Response:
    """The last resort (outside all middleware): log, apologise, and still send the security headers."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    response: Response
    # Outside the language middleware: the language it chose is still on the request's state.
    token = set_language(getattr(request.state, "language", "en"))
    try:
        response = error_response(request, 500, "internal_error", _SERVER_ERROR)
    except Exception:  # the templates themselves may be what broke
        log.exception("the error page could not be rendered")
        response = HTMLResponse(f"<!doctype html><title>{say(_ERROR_TITLE)}</title><p>{say(_SERVER_ERROR)}</p>",
                                status_code=500)
    finally:
        reset_language(token)
    apply_security_headers(MutableHeaders(raw=response.raw_headers), request.url.path, settings_of(request).https)
    return response
