"""Local BOLT11 decoding and the checks made before paying an invoice.

Decoding here (not via the node's `decode`) lets the app refuse a bad
withdrawal before any money is held. The `bolt11` package verifies the
checksum and the signature; it recovers the payee from the signature when
the invoice has no `n` tag, so "whose invoice is this" is answered by
comparing `payee`, and it does not check the network, which is done here.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import bolt11
from bolt11.exceptions import Bolt11Exception

from lightning.errors import LightningError, N_

# getinfo's `network` -> the BOLT11 human-readable-part currency prefix.
CURRENCY_BY_NETWORK: dict[str, str] = {
    "bitcoin": "bc",
    "testnet": "tb",
    "testnet4": "tb",
    "signet": "tbs",
    "regtest": "bcrt",
}

NETWORK_BY_CURRENCY: dict[str, str] = {
    "bc": "bitcoin",
    "tb": "testnet",
    "tbs": "signet",
    "bcrt": "regtest",
}

# An invoice about to expire may expire while the payment is in flight.
DEFAULT_MIN_REMAINING_S = 60
# More than 21 million bitcoin can never be asked for.
MAX_AMOUNT_MSAT = 21_000_000 * 100_000_000 * 1000
# BOLT11 strings of real wallets are a few hundred characters; 7,089 is the longest a QR code holds.
MAX_INVOICE_CHARS = 7089
_HEX32 = re.compile(r"[0-9a-f]{64}")


class InvalidInvoice(LightningError):
    """Base of the refusals of a BOLT11 string; the message is a sentence for people."""


class MalformedInvoice(InvalidInvoice):
    pass


class WrongNetwork(InvalidInvoice):
    pass


class InvoiceExpiredLocally(InvalidInvoice):
    pass


class AmountMissing(InvalidInvoice):
    pass


class AmountNotAllowed(InvalidInvoice):
    pass


class AmountNotPositive(InvalidInvoice):
    pass


class OwnNodeInvoice(InvalidInvoice):
    pass


@dataclass(frozen=True)
class DecodedInvoice:
    bolt11: str
    currency: str
    payee: str
    payment_hash: str
    payment_secret: str | None
    amount_msat: int | None
    created_at: int
    expiry_s: int
    description: str | None
    description_hash: str | None
    min_final_cltv_expiry: int

    @property
    def expires_at(self) -> int:
        return self.created_at + self.expiry_s

    @property
    def network(self) -> str:
        return NETWORK_BY_CURRENCY.get(self.currency, self.currency)


@dataclass(frozen=True)
class PayableInvoice:
    """An invoice that passed every check, with the amount that will be paid."""

    invoice: DecodedInvoice
    amount_msat: int
    # The amount to send to the node: None for fixed-amount invoices (CLN
    # refuses an amount for those), the entered amount for amountless ones.
    amount_param_msat: int | None


def normalise(text: str) -> str:
    """Strip whitespace and a `lightning:` URI prefix; BOLT11 is case-insensitive."""
    value = text.strip()
    if value.lower().startswith("lightning:"):
        value = value[len("lightning:") :]
    return value.lower()


def decode_invoice(text: str) -> DecodedInvoice:
    """Decode and verify a BOLT11 string (checksum and signature); every failure is a MalformedInvoice."""
    if not isinstance(text, str):
        raise MalformedInvoice(N_("This is not a Lightning invoice: it should be text starting with 'ln'."))
    value = normalise(text)
    if not value.startswith("ln"):
        raise MalformedInvoice(N_("This is not a Lightning invoice: it should start with 'ln'."))
    if len(value) > MAX_INVOICE_CHARS:
        raise MalformedInvoice(N_("This Lightning invoice is too long to be real."))
    try:
        decoded = bolt11.decode(value)
        fields = (decoded.currency, decoded.payee, decoded.payment_hash, decoded.payment_secret,
                  decoded.amount_msat, decoded.date, decoded.expiry, decoded.description,
                  decoded.description_hash, decoded.min_final_cltv_expiry)
    except Exception as exc:  # bolt11, bitstring, coincurve and bech32 each raise their own kinds
        raise MalformedInvoice(
            N_("This Lightning invoice could not be read: it is damaged or incomplete.")) from exc
    currency, payee, payment_hash, payment_secret, amount, date, expiry, description, description_hash, cltv = fields
    if not isinstance(payee, str) or not payee:
        raise MalformedInvoice(N_("This Lightning invoice does not say which node to pay."))
    if not isinstance(payment_hash, str) or not _HEX32.fullmatch(payment_hash):
        raise MalformedInvoice(N_("This Lightning invoice has no valid payment hash."))
    if not isinstance(payment_secret, str) or not _HEX32.fullmatch(payment_secret):
        raise MalformedInvoice(N_("This Lightning invoice has no payment secret (wallets add one since 2021): "
                               "ask for a new invoice."))
    if amount is not None and not 0 < int(amount) <= MAX_AMOUNT_MSAT:
        raise MalformedInvoice(N_("This Lightning invoice asks for an impossible amount."))
    numbers = (date, expiry, cltv)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise MalformedInvoice(N_("This Lightning invoice could not be read: it is damaged or incomplete."))
    return DecodedInvoice(
        bolt11=value,
        currency=str(currency),
        payee=payee,
        payment_hash=payment_hash,
        payment_secret=payment_secret,
        amount_msat=None if amount is None else int(amount),
        created_at=int(date),
        expiry_s=int(expiry),
        description=description if isinstance(description, str) else None,
        description_hash=description_hash if isinstance(description_hash, str) else None,
        min_final_cltv_expiry=int(cltv),
    )


def check_network(invoice: DecodedInvoice, node_network: str) -> None:
    expected = CURRENCY_BY_NETWORK.get(node_network)
    if expected is None:
        raise WrongNetwork(N_("The Lightning node runs on an unknown network '%(network)s'."),
                           params={"network": node_network})
    if invoice.currency != expected:
        raise WrongNetwork(N_("This invoice is for %(invoice_network)s, but this marketplace runs on %(network)s."),
                           params={"invoice_network": invoice.network, "network": node_network})


def check_not_expired(
    invoice: DecodedInvoice, now: float | None = None, min_remaining_s: int = DEFAULT_MIN_REMAINING_S
) -> None:
    current = time.time() if now is None else now
    remaining = invoice.expires_at - current
    if remaining <= 0:
        raise InvoiceExpiredLocally(N_("This invoice has expired: ask for a new one."))
    if remaining < min_remaining_s:
        raise InvoiceExpiredLocally(
            N_("This invoice expires in %(seconds)s seconds, too soon to pay safely: ask for a new one."),
            params={"seconds": int(remaining)})


def resolve_amount(invoice: DecodedInvoice, amount_msat: int | None) -> tuple[int, int | None]:
    """The amount to pay and the amount parameter to pass to the node."""
    if invoice.amount_msat is not None:
        if amount_msat is not None and amount_msat != invoice.amount_msat:
            raise AmountNotAllowed(
                N_("This invoice already names its amount; another amount cannot be entered."))
        return invoice.amount_msat, None
    if amount_msat is None:
        raise AmountMissing(N_("This invoice has no amount: enter the amount to send."))
    if amount_msat <= 0:
        raise AmountNotPositive(N_("The amount to send must be more than zero."))
    return amount_msat, amount_msat


def check_payable(
    text: str,
    *,
    node_network: str,
    own_node_id: str | None = None,
    amount_msat: int | None = None,
    now: float | None = None,
    min_remaining_s: int = DEFAULT_MIN_REMAINING_S,
) -> PayableInvoice:
    """Every check before paying, in the order a person would fix them."""
    invoice = decode_invoice(text)
    check_network(invoice, node_network)
    check_not_expired(invoice, now=now, min_remaining_s=min_remaining_s)
    total, param = resolve_amount(invoice, amount_msat)
    if own_node_id is not None and invoice.payee == own_node_id:
        raise OwnNodeInvoice(
            N_("This invoice belongs to the marketplace's own node; it cannot be paid through it."))
    return PayableInvoice(invoice=invoice, amount_msat=total, amount_param_msat=param)
