"""Who a user is to the marketplace: a role, and a name other people see."""
from __future__ import annotations

import unicodedata
from enum import Enum

from marketplace.domain.errors import InvalidInput
from marketplace.domain.messages import N_

DISPLAY_NAME_LENGTH_MAX = 64  # the users.display_name column width


class Role(str, Enum):
    LENDER = "lender"
    BORROWER = "borrower"
    OPERATOR = "operator"


# The operator account is made from the command line, never from the web form.
SIGNUP_ROLES = (Role.LENDER, Role.BORROWER)


def parse_signup_role(raw: str) -> Role:
    for role in SIGNUP_ROLES:
        if raw == role.value:
            return role
    raise InvalidInput(N_("Choose whether you want to lend or to borrow."))


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise InvalidInput(N_("The role must be one of %(roles)s.", roles=", ".join(r.value for r in Role))) from None


def normalize_display_name(raw: str, email: str) -> str:
    """Blanks collapsed; invisible and control characters refused; empty means the email's name part."""
    name = " ".join(raw.split())
    if not name:
        name = email.partition("@")[0][:DISPLAY_NAME_LENGTH_MAX]
    if len(name) > DISPLAY_NAME_LENGTH_MAX:
        raise InvalidInput(N_("The display name is too long (at most %(most)s characters).", most=DISPLAY_NAME_LENGTH_MAX))
    # Control and format characters (bidi overrides, zero-width joiners...) let
    # one name impersonate another on screen.
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in name):
        raise InvalidInput(N_("The display name contains characters that cannot be shown."))
    return name
