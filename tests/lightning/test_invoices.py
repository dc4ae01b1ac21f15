"""Local BOLT11 checks: each refusal is named and says what is wrong."""
from __future__ import annotations

import os
import time

import pytest

from lightning.devnode.issuer import issue, node_id_for
from lightning.invoices import (
    AmountMissing,
    AmountNotAllowed,
    AmountNotPositive,
    InvoiceExpiredLocally,
    MalformedInvoice,
    OwnNodeInvoice,
    WrongNetwork,
    check_payable,
    decode_invoice,
)

KEY = os.urandom(32).hex()
NODE_ID = node_id_for(KEY)


def make(currency: str = "bcrt", amount_msat: int | None = 50_000, expiry_s: int = 3600,
         created_at: int | None = None, key: str = KEY) -> str:
    return issue(
        private_key_hex=key, currency=currency, amount_msat=amount_msat, description="test",
        payment_hash=os.urandom(32).hex(), payment_secret=os.urandom(32).hex(),
        created_at=int(time.time()) if created_at is None else created_at, expiry_s=expiry_s,
    )


def test_a_good_invoice_decodes_with_its_payee_recovered_from_the_signature() -> None:
    text = make()
    decoded = decode_invoice("  LIGHTNING:" + text.upper() + "\n")
    assert decoded.payee == NODE_ID
    assert decoded.amount_msat == 50_000
    assert decoded.network == "regtest"
    payable = check_payable(text, node_network="regtest", own_node_id=node_id_for(os.urandom(32).hex()))
    assert payable.amount_msat == 50_000 and payable.amount_param_msat is None


@pytest.mark.parametrize("text", ["", "hello", "lnbcrt1garbage", "bc1qxyz"])
def test_garbage_is_malformed(text: str) -> None:
    with pytest.raises(MalformedInvoice) as caught:
        decode_invoice(text)
    assert caught.value.message.endswith(".")


def test_a_damaged_checksum_or_truncated_string_is_malformed() -> None:
    text = make()
    flipped = text[:-1] + ("q" if text[-1] != "q" else "p")
    for bad in (flipped, text[: len(text) // 2]):
        with pytest.raises(MalformedInvoice):
            decode_invoice(bad)


@pytest.mark.parametrize("currency,network", [("bc", "bitcoin"), ("tb", "testnet"), ("tbs", "signet")])
def test_an_invoice_for_another_network_is_refused(currency: str, network: str) -> None:
    with pytest.raises(WrongNetwork) as caught:
        check_payable(make(currency=currency), node_network="regtest")
    assert network in caught.value.message and "regtest" in caught.value.message
    # ...and the same invoice is fine on its own network.
    assert check_payable(make(currency=currency), node_network=network).amount_msat == 50_000


def test_expired_and_about_to_expire_invoices_are_refused() -> None:
    with pytest.raises(InvoiceExpiredLocally, match="expired"):
        check_payable(make(created_at=int(time.time()) - 7200, expiry_s=3600), node_network="regtest")
    with pytest.raises(InvoiceExpiredLocally, match="too soon"):
        check_payable(make(expiry_s=30), node_network="regtest", min_remaining_s=60)


def test_amountless_invoices_need_an_amount() -> None:
    text = make(amount_msat=None)
    with pytest.raises(AmountMissing):
        check_payable(text, node_network="regtest")
    with pytest.raises(AmountNotPositive):
        check_payable(text, node_network="regtest", amount_msat=0)
    payable = check_payable(text, node_network="regtest", amount_msat=21_000)
    assert payable.amount_msat == 21_000 and payable.amount_param_msat == 21_000


def test_fixed_amount_cannot_be_overridden() -> None:
    with pytest.raises(AmountNotAllowed):
        check_payable(make(), node_network="regtest", amount_msat=1)


def test_our_own_nodes_invoice_is_refused() -> None:
    with pytest.raises(OwnNodeInvoice):
        check_payable(make(), node_network="regtest", own_node_id=NODE_ID)
