"""Which language a person reads: their own choice first, then their browser's Accept-Language.

Plain rules, no web imports. RFC 9110 §12.5.4: a list of language ranges, each with an
optional q-value from 0 to 1 (q=0 means "not this one"); the highest q wins, ties go to
the earlier range; a range matches a language when it is the language or one of its
sub-tags ("es-MX" and "es" both choose Spanish); "*" matches any language not named
otherwise. Anything unreadable is skipped, never an error. English is the fallback.
"""
from __future__ import annotations

import re

DEFAULT = "en"
# English first: it is the message id, the text shown when no translation exists.
SUPPORTED: tuple[str, ...] = ("en", "es")
NAMES = {"en": "English", "es": "Español"}  # each language named in itself, as a picker shows it
HEADER_LENGTH_MAX = 512  # a longer header is a mistake or an attack; read its start only
_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QVALUE = re.compile(r"^q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$", re.I)


def supported(code: str | None) -> str | None:
    """`code` when it names a language offered here ("es", "ES"), else None."""
    if not code:
        return None
    lowered = code.strip().lower()
    return lowered if lowered in SUPPORTED else None


def parse_accept_language(header: str) -> list[tuple[str, float]]:
    """The header's readable (range, q) pairs in their written order, ranges lower-cased."""
    ranges: list[tuple[str, float]] = []
    for item in header[:HEADER_LENGTH_MAX].split(","):
        parts = [part.strip() for part in item.split(";")]
        tag = parts[0]
        if not tag or not _RANGE.match(tag):
            continue
        q = 1.0
        if len(parts) > 1:
            found = _QVALUE.match(parts[1].replace(" ", ""))
            if found is None or len(parts) > 2:
                continue
            q = float(found.group(1))
        ranges.append((tag.lower(), q))
    return ranges


def negotiate(header: str | None) -> str:
    """The offered language the header prefers most (q > 0), or English."""
    if not header:
        return DEFAULT
    best: tuple[float, int, str] | None = None  # (q, -position, language): max() picks highest q, earliest
    ranges = parse_accept_language(header)
    # "*" stands for the languages the header does not name (a named one keeps its own q, even q=0).
    named = {tag.split("-", 1)[0] for tag, _ in ranges}
    for position, (tag, q) in enumerate(ranges):
        primary = tag.split("-", 1)[0]
        if tag == "*":
            candidates = [lang for lang in SUPPORTED if lang not in named]
        else:
            candidates = [primary] if primary in SUPPORTED else []
        for language in candidates:
            if q > 0 and (best is None or (q, -position) > best[:2]):
                best = (q, -position, language)
    return DEFAULT if best is None else best[2]


def choose(preference: str | None, header: str | None) -> str:
    """The person's own choice when it is offered here, else what the browser asks for."""
    return supported(preference) or negotiate(header)
