"""The settings page: a signed-in person's API tokens (create, shown once; list; revoke).

Ordinary forms, so the CSRF middleware checks every POST. A new token is shown
in the answer to the POST that made it, never in a URL, and never again.
"""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from marketplace.domain.errors import Refusal
from marketplace.domain.users import Role
from marketplace.services import accounts, api_tokens
from marketplace.services.api_tokens import CreatedToken
from marketplace.web.forms import parse_form, text_field
from marketplace.web.params import path_id
from marketplace.web.rendering import render
from marketplace.web.sessions import require_role
from marketplace.web.state import database_of
from marketplace.web.i18n import language_cookie, say
from marketplace.domain.messages import Message, N_

ANYONE = (Role.LENDER, Role.BORROWER, Role.OPERATOR)


async def _page(request: Request, user_id: int, *, created: CreatedToken | None = None,
                refusal: Refusal | None = None, name: str = "", notice: Message | None = None) -> Response:
    tokens = await run_in_threadpool(api_tokens.list_tokens, database_of(request), user_id)
    context = {"tokens": tokens, "created": created, "error": say(refusal) if refusal else None,
               "echo_name": name, "notice": notice, "name_max": api_tokens.NAME_LENGTH_MAX}
    return await render(request, "settings.html", context, status=refusal.status if refusal else 200)


async def settings_page(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    done = request.query_params.get("done")
    notice = {"revoked": N_("The token was revoked; it no longer works."),
              "language": N_("Your language is saved.")}.get(done or "")
    return await _page(request, user.id, notice=notice)


async def create_token(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    form = await parse_form(request)
    name = ""
    try:
        name = text_field(form, "name", length_max=api_tokens.NAME_LENGTH_MAX * 4, label=N_("token name"))
        created = await run_in_threadpool(api_tokens.create_token, database_of(request), user.id, name)
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


def settings_routes() -> list[BaseRoute]:
    return [
        Route("/settings", settings_page, methods=["GET"], name="settings"),
        Route("/settings/language", save_language, methods=["POST"], name="settings_language"),
        Route("/settings/tokens", create_token, methods=["POST"], name="settings_create_token"),
        Route("/settings/tokens/{token_id}/revoke", revoke_token, methods=["POST"], name="settings_revoke_token"),
    ]
