from __future__ import annotations

import pytest

from marketplace.domain.errors import InvalidInput
from marketplace.domain.users import Role, normalize_display_name, parse_role, parse_signup_role


def test_signup_roles_exclude_the_operator() -> None:
    assert parse_signup_role("lender") is Role.LENDER
    assert parse_signup_role("borrower") is Role.BORROWER
    for raw in ("operator", "Lender", "", "admin"):
        with pytest.raises(InvalidInput):
            parse_signup_role(raw)


def test_parse_role_accepts_every_role() -> None:
    assert [parse_role(r.value) for r in Role] == list(Role)
    with pytest.raises(InvalidInput):
        parse_role("root")


def test_display_name_is_tidied_or_defaulted() -> None:
    assert normalize_display_name("  Ada \t Lovelace ", "a@example.com") == "Ada Lovelace"
    assert normalize_display_name("", "ada.l@example.com") == "ada.l"
    assert normalize_display_name("Zoë 李", "a@example.com") == "Zoë 李"


@pytest.mark.parametrize("name", ["x" * 65, "admin\u202e", "zero\u200bwidth", "bell\x07"])
def test_display_name_refusals(name: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_display_name(name, "a@example.com")
