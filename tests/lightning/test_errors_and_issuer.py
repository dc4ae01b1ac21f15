"""CLN error codes map to typed errors; dev node invoices are what bolt11.encode makes."""
from __future__ import annotations

import os
import time

import pytest

from lightning import errors
from lightning.cln_parse import version_tuple
from lightning.devnode.issuer import decode_reply, issue, issue_with_bolt11_package


@pytest.mark.parametrize(
    "code,method,cls",
    [
        (900, "invoice", errors.DuplicateLabel),
        (901, "invoice", errors.DuplicatePreimage),
        (903, "waitinvoice", errors.InvoiceExpired),
        (207, "xpay", errors.InvoiceExpired),
        (904, "waitanyinvoice", errors.WaitTimeout),
        (205, "xpay", errors.NoRoute),
        (203, "xpay", errors.PaymentFailed),
        (209, "xpay", errors.PaymentFailed),
        (210, "pay", errors.PaymentFailed),
        (219, "xpay", errors.AlreadyPaid),
        (201, "pay", errors.PaymentInProgress),
        (200, "pay", errors.PaymentPending),
        (211, "pay", errors.PaymentPending),  # unmapped pay code: unknown, never "failed"
        (-32602, "invoice", errors.InvalidParams),
        (-32601, "decodepay", errors.UnknownCommand),
        (-1, "waitinvoice", errors.InvoiceNotFound),
        (-1, "getinfo", errors.NodeError),
        (301, "fundchannel", errors.FundingError),
        (401, "connect", errors.ConnectError),
    ],
)
def test_codes_map_to_typed_errors(code: int, method: str, cls: type[errors.LightningError]) -> None:
    error = errors.error_for_code(code, "message text is not used for mapping", None, method)
    assert type(error) is cls and error.code == code


def test_pay_201_is_never_a_failure() -> None:
    assert not isinstance(errors.error_for_code(201, "", None, "pay"), errors.PaymentFailed)


@pytest.mark.parametrize("text,expected", [("v26.06.6", (26, 6)), ("v24.11", (24, 11)),
                                           ("v24.08.2-modded", (24, 8)), ("weird", (99, 0))])
def test_version_parsing(text: str, expected: tuple[int, int]) -> None:
    assert version_tuple(text) == expected


@pytest.mark.parametrize("amount_msat,description,deschashonly,expiry_s", [
    (1000, "d", False, 3600), (None, "keysend", False, 604800),
    (50_000_000, "x" * 400, True, 1), (123_456_789, "ünïcode ✓", False, 60),
])
def test_fast_issuer_is_byte_identical_to_bolt11_encode(
    amount_msat: int | None, description: str, deschashonly: bool, expiry_s: int
) -> None:
    kwargs = dict(
        private_key_hex=os.urandom(32).hex(), currency="bcrt", amount_msat=amount_msat,
        description=description, payment_hash=os.urandom(32).hex(),
        payment_secret=os.urandom(32).hex(), created_at=int(time.time()), expiry_s=expiry_s,
        deschashonly=deschashonly,
    )
    fast = issue(**kwargs)  # type: ignore[arg-type]
    assert fast == issue_with_bolt11_package(**kwargs)  # type: ignore[arg-type]
    assert decode_reply(fast)["payment_hash"] == kwargs["payment_hash"]


def test_large_whole_bitcoin_amounts_keep_their_zeros() -> None:
    """bolt11 2.2.0 wrote 3,125,000 BTC as "3125" (3,125 BTC); the fuzz found it. Ours reads back exactly."""
    from bolt11.utils import amount_to_msat

    from lightning.devnode.issuer import hrp_amount

    for amount in (312_500_000_000_000_000, 10**17, 123_456_789_000, 1, 10, 100, 50_000, 21 * 10**17):
        assert amount_to_msat(hrp_amount(amount)) == amount
    assert hrp_amount(312_500_000_000_000_000) == "3125000" and hrp_amount(1) == "10p"
