"""Numbers in the address: path ids and query-string numbers, read by the one set of number rules.

Forms go through `marketplace.web.forms` and JSON bodies through
`marketplace.web.views.api_v1`, both on `marketplace.domain.numbers` too.
"""
from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request

from marketplace.domain import numbers
from marketplace.domain.errors import InvalidInput, NotFound
from marketplace.domain.messages import Message, N_

# Ids are BIGINT: 18 digits always fit, and anything longer names nothing.
ID_DIGITS_MAX = 18


# One sentence per kind of thing, so each language can give the noun its own gender.
_NO_SUCH = {"loan": N_("There is no such loan."), "note": N_("There is no such note."),
            "invoice": N_("There is no such invoice."), "token": N_("There is no such token."),
            "notice": N_("There is no such notice.")}


def path_id(request: Request, name: str, what: str) -> int:
    """A positive id from the path; anything else (other scripts' digits, signs, 0, blanks, too long) is NotFound."""
    value = numbers.strict_id(str(request.path_params.get(name, "")))
    if value is None:
        raise NotFound(_NO_SUCH.get(what) or N_("There is no such %(what)s.", what=what))
    return value


def query_whole(
    request: Request, name: str, *, default: int, minimum: int, maximum: int, sentence: str | Message | None = None,
    refusal: type[InvalidInput] = numbers.NumberRefused, blank_is_default: bool = True,
) -> int:
    """A whole number from the query string (absent, or blank from an empty form field: `default`).

    Anything else is refused with `refusal(sentence)`.
    """
    raw = request.query_params.get(name)
    if raw is None or (blank_is_default and not raw.strip()):
        return default
    said = sentence or N_("The %(name)s must be a whole number from %(minimum)s to %(maximum)s.", name=name,
                          minimum=format(minimum, ","), maximum=format(maximum, ","))
    try:
        return numbers.whole(raw, label=name, minimum=minimum, maximum=maximum,
                             not_number=said, too_small=said, too_big=said)
    except numbers.NumberRefused:
        raise refusal(said) from None


def declared_length(headers: Headers) -> int | None:
    """The Content-Length a client declared, or None when absent or not a number (the body is counted anyway)."""
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        return numbers.whole(raw, label="content length")
    except numbers.NumberRefused:
        return None
