"""Reading form posts without trusting them: every failure becomes a 400, never a 500."""
from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from marketplace.domain.errors import InvalidInput
from marketplace.domain.money import parse_sat, parse_sat_msat
from marketplace.domain.messages import Message, N_

# The CSRF middleware parses the body once and leaves the result here.
PARSED_FORM_KEY = "microlend.form"
FORM_FIELDS_MAX = 50
FORM_PART_SIZE_MAX = 16 * 1024


class BadForm(InvalidInput):
    code = "bad_form"
    status = 400


async def parse_form(request: Request) -> FormData:
    cached = request.scope.get(PARSED_FORM_KEY)
    if isinstance(cached, FormData):
        return cached
    try:
        form = await request.form(max_files=0, max_fields=FORM_FIELDS_MAX, max_part_size=FORM_PART_SIZE_MAX)
    # python-multipart's own parse errors are ValueErrors; Starlette wraps its limits in HTTPException.
    except (HTTPException, MultiPartException, ValueError) as exc:
        raise BadForm(N_("The form could not be read; reload the page and try again.")) from exc
    request.scope[PARSED_FORM_KEY] = form
    return form


def text_field(form: FormData, name: str, *, length_max: int, label: str | Message) -> str:
    """A text field's value ('' when absent); refused when it is a file or too long."""
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadForm(N_("The %(label)s must be text.", label=label))
    if len(value) > length_max:
        raise InvalidInput(N_("The %(label)s is too long (at most %(most)s characters).", label=label,
                              most=length_max))
    return value


def safe_next(raw: str | None, default: str) -> str:
    """A same-site path to return to after sign-in; anything else (//evil, http://...) is dropped."""
    if not raw or len(raw) > 500 or not raw.startswith("/") or raw.startswith("//"):
        return default
    if "\\" in raw or any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return default
    return raw


def sat_amount(raw: str) -> int:
    """A typed whole-sat amount, in msat; refused (InvalidInput) with the reason otherwise."""
    return parse_sat(raw)


def optional_sat_amount(raw: str) -> int | None:
    """As `sat_amount`, but an empty field means no amount was given."""
    return sat_amount(raw) if raw.strip() else None


def optional_sat_msat_amount(raw: str) -> int | None:
    """A typed amount in sat with up to three decimals (msat), or None when the field is empty."""
    if not raw.strip():
        return None
    try:
        return parse_sat_msat(raw)
    except ValueError as exc:
        said = exc.args[0] if exc.args and isinstance(exc.args[0], Message) else str(exc)
        raise InvalidInput(said) from exc
