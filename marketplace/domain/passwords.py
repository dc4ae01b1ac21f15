"""What a new password must be. Checking a password against its hash is the service's job."""
from __future__ import annotations

from marketplace.domain.errors import InvalidInput
from marketplace.domain.messages import N_

PASSWORD_LENGTH_MIN = 10
# Long enough for any passphrase or manager-generated secret; short enough that
# hashing an attacker's megabyte-long "password" costs nothing special.
PASSWORD_LENGTH_MAX = 1024


def check_new_password(password: str) -> None:
    if len(password) < PASSWORD_LENGTH_MIN:
        raise InvalidInput(N_("Choose a password of at least %(least)s characters.", least=PASSWORD_LENGTH_MIN))
    if len(password) > PASSWORD_LENGTH_MAX:
        raise InvalidInput(N_("Choose a password of at most %(most)s characters.", most=PASSWORD_LENGTH_MAX))
    if "\x00" in password:
        raise InvalidInput(N_("A password cannot contain a NUL character."))
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: not text any keyboard can type again
        raise InvalidInput(N_("The password contains characters that cannot be stored.")) from None
