"""Sign up, sign in, sign out. A refused form comes back with its message and the email typed."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from marketplace.domain.emails import EMAIL_LENGTH_MAX
from marketplace.domain.errors import Refusal
from marketplace.domain.passwords import PASSWORD_LENGTH_MAX
from marketplace.domain.users import DISPLAY_NAME_LENGTH_MAX, SIGNUP_ROLES, parse_signup_role
from marketplace.services import accounts, auth
from marketplace.web.csrf import clear_anon_cookie
from marketplace.web.errors import retry_after_headers
from marketplace.web.forms import parse_form, safe_next, text_field
from marketplace.web.rendering import render
from marketplace.web.security import client_address
from marketplace.web.sessions import clear_session_cookie, session_token, set_session_cookie
from marketplace.web.state import database_of, settings_of
from marketplace.web.i18n import say
from marketplace.domain.messages import N_

AFTER_SIGNIN = "/dashboard"
# Generous: leading/trailing blanks are stripped before the real limit applies.
_EMAIL_FIELD_MAX = EMAIL_LENGTH_MAX + 64
_NAME_FIELD_MAX = DISPLAY_NAME_LENGTH_MAX * 4


async def signup_page(request: Request) -> Response:
    # "Start lending" / "Ask for a loan" links pick the role (?role=lender); the form echoes only known roles.
    wanted = request.query_params.get("role", "")
    return await _signup_form(request, {"role": wanted} if wanted in ("lender", "borrower") else {})


async def signup(request: Request) -> Response:
    form = await parse_form(request)
    try:
        email = text_field(form, "email", length_max=_EMAIL_FIELD_MAX, label=N_("email"))
        password = text_field(form, "password", length_max=PASSWORD_LENGTH_MAX, label=N_("password"))
        name = text_field(form, "display_name", length_max=_NAME_FIELD_MAX, label=N_("display name"))
        role = parse_signup_role(text_field(form, "role", length_max=16, label=N_("role")))
        settings = settings_of(request)
        signed_in = await accounts.sign_up_through_gate(
            database_of(request), settings, email, password, role, name,
            client_address(request), session_token(request),
        )
    except Refusal as refusal:
        return await _signup_form(request, _echo(form), refusal)
    return _signed_in(request, signed_in.token, AFTER_SIGNIN)


async def signin_page(request: Request) -> Response:
    return await _signin_form(request, {"next": safe_next(request.query_params.get("next"), "")})


async def signin(request: Request) -> Response:
    form = await parse_form(request)
    try:
        email = text_field(form, "email", length_max=_EMAIL_FIELD_MAX, label=N_("email"))
        password = text_field(form, "password", length_max=PASSWORD_LENGTH_MAX, label=N_("password"))
        settings = settings_of(request)
        signed_in = await auth.sign_in_through_gate(
            database_of(request), settings, email, password, client_address(request), session_token(request),
        )
    except Refusal as refusal:
        return await _signin_form(request, _echo(form), refusal)
    return _signed_in(request, signed_in.token, _next_of(form))


async def signout(request: Request) -> Response:
    token = session_token(request)
    if token is not None:
        await run_in_threadpool(auth.sign_out, database_of(request), token)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(response, request)
    clear_anon_cookie(response, request)
    return response


def _signed_in(request: Request, token: str, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, token)
    clear_anon_cookie(response, request)
    return response


async def _signup_form(request: Request, values: dict[str, str], refusal: Refusal | None = None) -> Response:
    context: dict[str, Any] = {
        "email": values.get("email", ""), "display_name": values.get("display_name", ""),
        "role": values.get("role", "lender"), "roles": [r.value for r in SIGNUP_ROLES],
        "error": say(refusal) if refusal else None,
    }
    return await render(request, "signup.html", context, status=refusal.status if refusal else 200,
                        headers=retry_after_headers(refusal))


async def _signin_form(request: Request, values: dict[str, str], refusal: Refusal | None = None) -> Response:
    context = {"email": values.get("email", ""), "next": values.get("next", ""),
               "error": say(refusal) if refusal else None}
    return await render(request, "signin.html", context, status=refusal.status if refusal else 200,
                        headers=retry_after_headers(refusal))


def _echo(form: FormData) -> dict[str, str]:
    """What to put back in a refused form: the text fields, cut to size, and never the password."""
    values = {}
    for name, limit in (("email", EMAIL_LENGTH_MAX), ("display_name", DISPLAY_NAME_LENGTH_MAX), ("role", 16)):
        value = form.get(name)
        values[name] = value[:limit] if isinstance(value, str) else ""
    values["next"] = _next_of(form, default="")
    return values


def _next_of(form: FormData, default: str = AFTER_SIGNIN) -> str:
    value = form.get("next")
    return safe_next(value if isinstance(value, str) else None, default)
