"""Page rendering: every template sees the signed-in user and the CSRF token for its forms."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from marketplace.web import formatting
from marketplace.domain.text import strip_bidi
from marketplace.web.csrf import csrf_token_for, set_anon_cookie
from marketplace.web.i18n import install_i18n, say
from marketplace.web.words import WORDS
from marketplace.web.sessions import current_user
from marketplace.web.state import TEMPLATES_DIR, templates_of
from marketplace.domain.messages import Message


def word(code: object, default: object = None) -> object:
    """A stored code ("written_off", "farming") as a word in the reader's language; else `default` or the code."""
    if isinstance(code, str) and code in WORDS:
        return say(WORDS[code])
    return code if default is None else default


def build_templates() -> Jinja2Templates:
    return Jinja2Templates(env=_environment())


def _finalize(value: object) -> object:
    if isinstance(value, Message):
        return strip_bidi(say(value))
    if isinstance(value, Markup):
        return Markup(strip_bidi(str(value)))
    if isinstance(value, str):
        return strip_bidi(value)
    return value


@functools.cache
def _environment() -> jinja2.Environment:
    """One environment per process: every app in it (the test suite makes hundreds) shares the compiled
    templates; nothing in it belongs to one app (the language is the request's, read from a context variable)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        # A typo in a template fails loudly in tests instead of rendering blank.
        undefined=jinja2.StrictUndefined,
        # A marked sentence handed to a template (a notice, a warning) prints in the reader's language; every
        # other text printed loses its bidirectional controls (one person's text cannot reorder the page).
        finalize=_finalize,
    )
    # Amounts people read: whole sats in the reader's number format (formatting.py states the rounding rule);
    # `owed` rounds up what someone must pay, `msat_exact` keeps millisatoshis where exactness is the point.
    env.filters.update(formatting.FILTERS)
    env.filters["msat"] = formatting.sat
    env.globals.update(formatting.GLOBALS)
    # A stored code ("written_off", "farming") as a word in the reader's language.
    env.filters["word"] = word
    install_i18n(env)
    return env


async def render(
    request: Request, name: str, context: Mapping[str, Any] | None = None, *,
    status: int = 200, headers: Mapping[str, str] | None = None,
) -> Response:
    user = await current_user(request)
    token, new_cookie = csrf_token_for(request, user)
    full = {"user": user, "csrf_token": token, **(context or {})}
    response = templates_of(request).TemplateResponse(request, name, full, status_code=status, headers=headers)
    if new_cookie is not None:
        set_anon_cookie(response, request, new_cookie)
    return response
