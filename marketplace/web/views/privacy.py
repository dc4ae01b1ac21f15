"""A person's data from /settings: the JSON export, and erasure (borrowers with no open loan)."""
from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketplace.domain.errors import Refusal
from marketplace.domain.users import Role
from marketplace.services import api_tokens, privacy
from marketplace.web.forms import parse_form, text_field
from marketplace.web.lightning import lightning_of
from marketplace.web.rendering import render
from marketplace.web.sessions import clear_session_cookie, require_role
from marketplace.web.state import database_of, settings_of
from marketplace.web.i18n import say
from marketplace.domain.messages import N_

ANYONE = (Role.LENDER, Role.BORROWER, Role.OPERATOR)


async def export(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    data = await run_in_threadpool(privacy.export_for, database_of(request), user.id)
    body = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)
    day = str(data["exported_at"])[:10]
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="microlend-export-{day}.json"'})


async def erase(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    form = await parse_form(request)
    try:
        confirmation = text_field(form, "confirm", length_max=64, label=N_("confirmation"))
        erased = await privacy.erase_borrower_cancelling(database_of(request), lightning_of(request).port,
                                                         settings_of(request), user.id, confirmation)
    except Refusal as refusal:
        tokens = await run_in_threadpool(api_tokens.list_tokens, database_of(request), user.id)
        context = {"tokens": tokens, "created": None, "error": None, "echo_name": "", "notice": None,
                   "name_max": api_tokens.NAME_LENGTH_MAX, "erase_error": say(refusal),
                   "lifetime_max": settings_of(request).api_token_lifetime_days}
        return await render(request, "settings.html", context, status=refusal.status)
    # The session row is gone with the erasure: show the rest of this page as to anyone signed out.
    request.state.user = None
    response = await render(request, "erased.html", {"erased": erased})
    clear_session_cookie(response, request)
    return response


def privacy_routes() -> list[BaseRoute]:
    return [
        Route("/settings/export", export, methods=["GET"], name="settings_export"),
        Route("/settings/erase", erase, methods=["POST"], name="settings_erase"),
    ]
