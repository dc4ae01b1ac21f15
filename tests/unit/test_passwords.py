from __future__ import annotations

import pytest

from marketplace.domain.errors import InvalidInput
from marketplace.domain.passwords import PASSWORD_LENGTH_MAX, check_new_password


@pytest.mark.parametrize("password", ["", "short", "123456789", "x" * (PASSWORD_LENGTH_MAX + 1), "abcdefghi\x00j"])
def test_weak_or_absurd_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput):
        check_new_password(password)


@pytest.mark.parametrize("password", ["0123456789", "correct horse battery staple", "ÿ" * 10, "x" * PASSWORD_LENGTH_MAX])
def test_acceptable_passwords(password: str) -> None:
    check_new_password(password)
