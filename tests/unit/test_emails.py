from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from marketplace.domain.emails import EMAIL_LENGTH_MAX, canonical_email, normalize_email
from marketplace.domain.errors import InvalidInput


@pytest.mark.parametrize("raw,expected", [
    ("ada@example.com", "ada@example.com"),
    ("  Ada.Lovelace+loans@Example.CO.uk \n", "ada.lovelace+loans@example.co.uk"),
    ("o'brien@xn--bcher-kva.example", "o'brien@xn--bcher-kva.example"),
    ("a@b-c.io", "a@b-c.io"),
])
def test_valid_emails_are_canonical(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "   ", "ada", "ada@", "@example.com", "ada@example", "ada@localhost", "a b@example.com",
    "ada@@example.com", "ada@exa_mple.com", "ada@-example.com", "ada@example-.com", "ada@example..com",
    ".ada@example.com", "ada.@example.com", "a..da@example.com", "ada@example.123", "ad\x00a@example.com",
    "ada@exämple.com", "\"ada\"@example.com", "x" * 65 + "@example.com", "a@" + "b" * 63 + "." + "c" * 200,
])
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(raw)


@given(st.text(max_size=300))
def test_any_text_is_either_refused_or_canonical_and_short(raw: str) -> None:
    try:
        email = normalize_email(raw)
    except InvalidInput:
        return
    assert email == canonical_email(email) and len(email) <= EMAIL_LENGTH_MAX and email.count("@") == 1
