from __future__ import annotations

import pytest

from marketplace.web.csrf import anon_csrf_token, session_csrf_token
from marketplace.web.forms import safe_next


@pytest.mark.parametrize("raw,expected", [
    ("/dashboard", "/dashboard"), ("/operator?tab=node", "/operator?tab=node"),
    (None, "/d"), ("", "/d"), ("dashboard", "/d"), ("//evil.example", "/d"), ("/\\evil.example", "/d"),
    ("https://evil.example/", "/d"), ("/x\r\nSet-Cookie: a=b", "/d"), ("/" + "a" * 600, "/d"),
])
def test_safe_next(raw: str | None, expected: str) -> None:
    assert safe_next(raw, "/d") == expected


def test_csrf_tokens_differ_by_purpose_key_and_binding() -> None:
    tokens = {
        session_csrf_token("k1", "t"), anon_csrf_token("k1", "t"),
        session_csrf_token("k2", "t"), session_csrf_token("k1", "u"),
    }
    assert len(tokens) == 4
    assert session_csrf_token("k1", "t") == session_csrf_token("k1", "t")


def test_csrf_tokens_are_masked_afresh_for_every_page() -> None:
    from marketplace.web.csrf import mask, unmask

    token = session_csrf_token("k1", "t")
    first, second = mask(token), mask(token)
    assert first != second and token not in first  # nothing stable for compression to leak
    assert unmask(first) == unmask(second) == token
    assert unmask("zz") == "" and unmask(token) == ""  # garbage and bare tokens are refused


def test_one_formatter_puts_msats_after_the_decimal_point() -> None:
    from marketplace.domain.money import format_msat, parse_sat_msat, plain_sat

    assert format_msat(8_814_166) == "8,814.166 sat"  # the refusal once said "8,814 sat.166"
    assert format_msat(-1_000) == "-1 sat" and format_msat(5) == "0.005 sat"
    assert plain_sat(8_814_166) == "8814.166" and plain_sat(-20_000_000, signed=True) == "-20000"
    assert parse_sat_msat(plain_sat(8_814_166)) == 8_814_166
