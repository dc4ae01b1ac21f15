"""LNURL-pay (LUD-06) and Lightning Addresses (LUD-16) for a loan's static pay code, on plain data.

A loan's handle (`loan-7f3k9qx2mz`) is its address's user name: unguessable,
and the only authority a payer needs — it lets anyone pay the loan, never
see whose it is. The metadata is the text a wallet shows before paying; the
invoice commits to its SHA-256 (`h`), which the wallet checks, so it never
changes for a pay code.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date

import bech32

from marketplace.domain.errors import InvalidInput, NotFound
from marketplace.domain.money import format_msat
from marketplace.domain.messages import N_

HANDLE_PREFIX = "loan-"
# 10 characters of 36: about 52 bits. Lower case and digits only, which LUD-16 allows in a user name.
HANDLE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
HANDLE_RANDOM_LENGTH = 10
HANDLE_PATTERN = re.compile(r"^loan-[a-z0-9]{10}$")
# Below 1 sat an invoice is not worth making: many wallets cannot even send less.
MIN_SENDABLE_MSAT = 1000
# The invoices table keeps the description (the metadata): at most this long.
METADATA_LENGTH_MAX = 640
AMOUNT_DIGITS_MAX = 18  # more than any payoff in msat; longer is not an amount
LNURL_HRP = "lnurl"


class LnurlRefusal(InvalidInput):
    """The payer's request cannot be met (bounds, amount); answered in LUD-06's error form."""

    code = "lnurl_refused"
    status = 400


def new_handle() -> str:
    return HANDLE_PREFIX + "".join(secrets.choice(HANDLE_ALPHABET) for _ in range(HANDLE_RANDOM_LENGTH))


def check_handle(name: str) -> str:
    """The handle a path names, or NotFound: anything else is not one of ours (and never reaches the database)."""
    lowered = name.lower()
    if not HANDLE_PATTERN.fullmatch(lowered):
        raise NotFound(N_("There is no loan with this pay code."))
    return lowered


def lightning_address(handle: str, host: str) -> str:
    return f"{handle}@{host}"


def pay_request_url(base_url: str, handle: str) -> str:
    """LUD-16's well-known address, which the LNURL1 form encodes too."""
    return f"{base_url.rstrip('/')}/.well-known/lnurlp/{handle}"


def callback_url(base_url: str, handle: str) -> str:
    return f"{base_url.rstrip('/')}/lnurlp/{handle}/callback"


def encode_lnurl(url: str) -> str:
    """LUD-01's bech32 form, upper case (what QR codes carry compactly). No length limit, unlike segwit."""
    words = bech32.convertbits(url.encode(), 8, 5)
    assert words is not None
    return bech32.bech32_encode(LNURL_HRP, words).upper()


def decode_lnurl(text: str) -> str:
    """The URL inside an `LNURL1...` string (with or without `lightning:`); ValueError if it is not one."""
    body = text.strip()
    if body.lower().startswith("lightning:"):
        body = body[len("lightning:"):]
    hrp, words = bech32.bech32_decode(body.lower())
    if hrp != LNURL_HRP or words is None:
        raise ValueError("not an LNURL")
    raw = bech32.convertbits(words, 5, 8, False)
    if raw is None:
        raise ValueError("not an LNURL")
    return bytes(raw).decode()


@dataclass(frozen=True)
class DueFacts:
    """What the metadata tells a payer: the loan, what is due and when, and the most it takes today."""

    loan_id: int
    next_due: tuple[date, int] | None
    payoff_msat: int


def metadata_text(loan_id: int) -> str:
    """The same words for as long as the pay code lives: a wallet may ask for the invoice minutes after the
    payRequest, and what it checks `h` against is the metadata it was given then (LUD-06). What changes (the
    next due amount) is on the card and the loan page, not here."""
    return f"Microlend loan {loan_id}. Any amount at any time counts."


def metadata(loan_id: int, address: str) -> str:
    """LUD-06's metadata (a JSON string) with LUD-16's identifier; the invoice commits to exactly these bytes.

    Static per pay code: a repayment between a wallet's payRequest and its callback must not change it."""
    entries = [["text/plain", metadata_text(loan_id)], ["text/identifier", address]]
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False)
    if len(text) > METADATA_LENGTH_MAX:
        raise InvalidInput(N_("This marketplace's host name is too long for a Lightning Address."))
    return text


def description_hash(metadata_json: str) -> str:
    return hashlib.sha256(metadata_json.encode("utf-8")).hexdigest()


def sendable(payoff_msat: int) -> tuple[int, int]:
    """(minSendable, maxSendable): at least a sat (less when less is owed), at most today's payoff."""
    return min(MIN_SENDABLE_MSAT, payoff_msat), payoff_msat


def parse_amount(raw: str | None) -> int:
    """The callback's `amount`: whole millisatoshis in ASCII digits, nothing else."""
    if raw is None or raw == "":
        raise LnurlRefusal(N_("The amount is missing: add ?amount=<millisatoshis>."))
    if len(raw) > AMOUNT_DIGITS_MAX or not (raw.isascii() and raw.isdigit()):
        raise LnurlRefusal(N_("The amount must be a whole number of millisatoshis, like 150000."))
    return int(raw)


def check_amount(amount_msat: int, payoff_msat: int) -> None:
    low, high = sendable(payoff_msat)
    if amount_msat < low:
        raise LnurlRefusal(N_("The smallest payment is %(amount)s (%(msat)s msat).", amount=format_msat(low), msat=low))
    if amount_msat > high:
        raise LnurlRefusal(N_("Paying the whole loan off today costs %(amount)s (%(msat)s msat); send at most that.",
                              amount=format_msat(high), msat=high))
