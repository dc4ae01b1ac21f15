"""The settings page: a signed-in person's API tokens (create, shown once; list; revoke), their password, and
"sign out everywhere".

Ordinary forms, so the CSRF middleware checks every POST. A new token is shown
in the answer to the POST that made it, never in a URL, and never again.
"""
from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from marketplace.domain.errors import Refusal
from marketplace.domain.users import Role
from marketplace.domain.passwords import PASSWORD_LENGTH_MAX
from marketplace.services import accounts, api_tokens, credentials
from marketplace.services.api_tokens import CreatedToken
from marketplace.web.forms import parse_form, text_field
from marketplace.web.params import path_id
from marketplace.web.rendering import render
from marketplace.web.errors import retry_after_headers
from marketplace.web.security import client_address
from marketplace.web.sessions import clear_session_cookie, require_role, set_session_cookie
from marketplace.web.state import database_of, settings_of
from marketplace.web.i18n import language_cookie, say
from marketplace.domain.messages import Message, N_

ANYONE = (Role.LENDER, Role.BORROWER, Role.OPERATOR)


async def _page(request: Request, user_id: int, *, created: CreatedToken | None = None,
                refusal: Refusal | None = None, name: str = "", notice: Message | None = None) -> Response:
    tokens = await run_in_threadpool(api_tokens.list_tokens, database_of(request), user_id)
    context = {"tokens": tokens, "created": created, "error": say(refusal) if refusal else None,
               "echo_name": name, "notice": notice, "name_max": api_tokens.NAME_LENGTH_MAX,
               "lifetime_max": settings_of(request).api_token_lifetime_days}
    return await render(request, "settings.html", context, status=refusal.status if refusal else 200,
                        headers=retry_after_headers(refusal))


async def settings_page(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    done = request.query_params.get("done")
    notice = {"revoked": N_("The token was revoked; it no longer works."),
              "language": N_("Your language is saved."),
              "password": N_("Your password is changed. Every other session and every API token has ended.")
              }.get(done or "")
    return await _page(request, user.id, notice=notice)


async def create_token(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    form = await parse_form(request)
    name = ""
    try:
        name = text_field(form, "name", length_max=api_tokens.NAME_LENGTH_MAX * 4, label=N_("token name"))
        scope = api_tokens.parse_scope(text_field(form, "scope", length_max=16, label=N_("scope")))
        days = api_tokens.parse_lifetime_days(text_field(form, "days", length_max=16, label=N_("days")),
                                              settings_of(request).api_token_lifetime_days)
        created = await run_in_threadpool(partial(api_tokens.create_token, database_of(request), user.id, name,
                                                  scope=scope, lifetime_days=days))
    except Refusal as refusal:
        return await _page(request, user.id, refusal=refusal, name=name[:api_tokens.NAME_LENGTH_MAX])
    return await _page(request, user.id, created=created)


async def save_language(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    form = await parse_form(request)
    try:
        raw = text_field(form, "language", length_max=16, label=N_("language"))
        language = await run_in_threadpool(accounts.set_language, database_of(request), user.id, raw)
    except Refusal as refusal:
        return await _page(request, user.id, refusal=refusal)
    response = RedirectResponse("/settings?done=language", status_code=303)
    # The same choice after signing out, on this browser; "follow the browser" forgets the cookie too.
    response.headers.append("Set-Cookie", language_cookie(request, language))
    return response


async def revoke_token(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    token_id = path_id(request, "token_id", "token")
    await run_in_threadpool(api_tokens.revoke_token, database_of(request), user.id, token_id)
    return RedirectResponse("/settings?done=revoked", status_code=303)


async def change_password(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    form = await parse_form(request)
    try:
        current = text_field(form, "current_password", length_max=PASSWORD_LENGTH_MAX, label=N_("current password"))
        new = text_field(form, "new_password", length_max=PASSWORD_LENGTH_MAX, label=N_("new password"))
        token = await credentials.change_password_through_gate(database_of(request), settings_of(request), user,
                                                               current, new, client_address(request))
    except Refusal as refusal:
        return await _page(request, user.id, refusal=refusal)
    response = RedirectResponse("/settings?done=password", status_code=303)
    set_session_cookie(response, request, token)
    return response


async def sign_out_everywhere(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    await run_in_threadpool(credentials.sign_out_everywhere, database_of(request), user.id)
    response = RedirectResponse("/signin", status_code=303)
    clear_session_cookie(response, request)
    return response


def settings_routes() -> list[BaseRoute]:
    return [
        Route("/settings", settings_page, methods=["GET"], name="settings"),
        Route("/settings/language", save_language, methods=["POST"], name="settings_language"),
        Route("/settings/tokens", create_token, methods=["POST"], name="settings_create_token"),
        Route("/settings/tokens/{token_id}/revoke", revoke_token, methods=["POST"], name="settings_revoke_token"),
        Route("/settings/password", change_password, methods=["POST"], name="settings_password"),
        Route("/settings/signout-everywhere", sign_out_everywhere, methods=["POST"], name="settings_signout_everywhere"),
    ]
