"""Email addresses as account names: one canonical spelling, checked before it is stored."""
from __future__ import annotations

import re

from marketplace.domain.errors import InvalidInput
from marketplace.domain.messages import N_

EMAIL_LENGTH_MAX = 254  # RFC 5321 path limit, and the users.email column width
LOCAL_PART_LENGTH_MAX = 64

# Deliberately narrower than RFC 5322: the dot-atom forms people actually use,
# ASCII only, so two spellings of one mailbox cannot become two accounts.
_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def canonical_email(raw: str) -> str:
    """The spelling we store and look up: surrounding blanks removed, lowercase."""
    return raw.strip().lower()


def normalize_email(raw: str) -> str:
    """A valid email in canonical form, or InvalidInput saying what is wrong."""
    email = canonical_email(raw)
    if not email:
        raise InvalidInput(N_("Enter your email address."))
    if len(email) > EMAIL_LENGTH_MAX:
        raise InvalidInput(N_("That email address is too long (at most %(most)s characters).", most=EMAIL_LENGTH_MAX))
    local, at, domain = email.rpartition("@")
    if not at or not _is_local_part(local) or not _is_domain(domain):
        raise InvalidInput(N_("That does not look like an email address; use the form name@example.com."))
    return email


def _is_local_part(local: str) -> bool:
    return 0 < len(local) <= LOCAL_PART_LENGTH_MAX and _LOCAL.fullmatch(local) is not None


def _is_domain(domain: str) -> bool:
    labels = domain.split(".")
    # A dot is required: bare hosts are never a real person's mailbox here.
    if len(labels) < 2:
        return False
    if not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()
