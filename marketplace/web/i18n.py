"""Text in the reader's language: one gettext catalog ("microlend"), English first.

Templates mark their words with `{{ _("...") }}`, Python code with `N_()`
(marketplace/domain/messages.py). `LanguageMiddleware` picks each request's language
(the `lang` query or cookie, a signed-in person's stored choice, else Accept-Language;
marketplace/domain/languages.py) and keeps it in a context variable, so templates,
refusal pages and API errors all translate with it, and the domain never sees it.
Without a compiled catalog for a language (`locale/<lang>/LC_MESSAGES/microlend.mo`)
the English text is shown as is. Re-extract and compile: see locale/README.md.
"""
from __future__ import annotations

import contextvars
import functools
import gettext
from pathlib import Path

import jinja2
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message as AsgiMessage, Receive, Scope, Send

from marketplace.domain import languages
from marketplace.domain.errors import Refusal
from marketplace.domain.messages import Message, as_message
from marketplace.web.security import is_secure
from marketplace.web.sessions import cookie_name, current_user, session_token

DOMAIN = "microlend"
LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
LANGUAGE_COOKIE = "ml_lang"
LANGUAGE_QUERY = "lang"
LANGUAGE_COOKIE_MAX_AGE_S = 365 * 24 * 3600

_current: contextvars.ContextVar[str] = contextvars.ContextVar("microlend_language", default=languages.DEFAULT)


@functools.cache
def catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog for `language` (loaded once), or the English source text."""
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[language], fallback=True)


def current_language() -> str:
    return _current.get()


def set_language(language: str) -> contextvars.Token[str]:
    return _current.set(languages.supported(language) or languages.DEFAULT)


def reset_language(token: contextvars.Token[str]) -> None:
    _current.reset(token)


def gettext_now(msgid: str) -> str:
    return catalog(_current.get()).gettext(msgid)


def ngettext_now(singular: str, plural: str, n: int) -> str:
    return catalog(_current.get()).ngettext(singular, plural, n)


def say(text: str | Message | Refusal, language: str | None = None) -> str:
    """A marked message (or a refusal's) in `language`, by default the current request's."""
    message = text.text if isinstance(text, Refusal) else as_message(text)
    return message.translated(catalog(language or _current.get()))


def install_i18n(env: jinja2.Environment, language: str | None = None) -> None:
    """Add the i18n extension; `_()` translates into the current request's language (or `language`)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    if language is None:
        env.install_gettext_callables(gettext_now, ngettext_now, newstyle=True)  # type: ignore[attr-defined]
    else:
        env.install_gettext_translations(catalog(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["current_language"] = current_language
    env.globals["say"] = say
    env.globals["language_names"] = languages.NAMES


def query_language(conn: HTTPConnection) -> str | None:
    return languages.supported(conn.query_params.get(LANGUAGE_QUERY))


def chosen_language(conn: HTTPConnection, stored: str | None = None) -> str:
    """The query's `lang`, then a signed-in person's stored choice, then the cookie, then Accept-Language."""
    return (query_language(conn) or languages.supported(stored)
            or languages.choose(conn.cookies.get(cookie_name(conn, LANGUAGE_COOKIE)),
                                conn.headers.get("accept-language")))


class LanguageMiddleware:
    """Sets the request's language before anything renders; answers vary with the header and cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        language = chosen_language(conn, await _stored_language(conn))
        scope.setdefault("state", {})["language"] = language
        token = set_language(language)
        picked = query_language(conn)

        async def send_varying(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.add_vary_header("Accept-Language")
                headers.add_vary_header("Cookie")
                headers.setdefault("Content-Language", language)
                if picked is not None:  # `?lang=es` (the footer's links): remembered for the next pages
                    headers.append("Set-Cookie", language_cookie(conn, picked))
            await send(message)

        try:
            await self.app(scope, receive, send_varying)
        finally:
            _current.reset(token)


def language_cookie(conn: HTTPConnection, language: str | None) -> str:
    """A Set-Cookie value remembering `language` for a year (None: forgetting it); not secret, Lax."""
    secure = "; Secure" if is_secure(conn) else ""
    max_age = LANGUAGE_COOKIE_MAX_AGE_S if language else 0
    return (f"{cookie_name(conn, LANGUAGE_COOKIE)}={language or ''}; Path=/; Max-Age={max_age}; "
            f"SameSite=Lax{secure}")


async def _stored_language(conn: HTTPConnection) -> str | None:
    """A signed-in person's saved choice (the session look-up is kept for the handler to reuse)."""
    if session_token(conn) is None or conn.url.path.startswith("/static/"):
        return None
    user = await current_user(conn)
    return None if user is None else user.language
