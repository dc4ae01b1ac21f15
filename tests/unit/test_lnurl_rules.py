"""LUD-01/06/16 rules on plain data: the bech32 form, handles, metadata and its hash, bounds, amounts."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.domain import lnurl
from marketplace.domain.errors import NotFound
from marketplace.services.lnurl import Site, pay_code
from marketplace.settings import SettingsError, settings_from_env

# LUD-01's own example.
LUD01_URL = "https://service.com/api?q=3fc3645b439ce8e7f2553a69e5267081d96dcd340693afabe04be7b0ccd178df"
LUD01_LNURL = ("LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56NYD3HXQ"
               "URZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS")


def test_the_bech32_form_matches_lud01s_example() -> None:
    assert lnurl.encode_lnurl(LUD01_URL) == LUD01_LNURL
    assert lnurl.decode_lnurl(LUD01_LNURL) == LUD01_URL
    assert lnurl.decode_lnurl("lightning:" + LUD01_LNURL.lower()) == LUD01_URL


@settings(max_examples=100)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-./:?=&", min_size=1, max_size=300))
def test_any_url_goes_round_the_bech32_form(url: str) -> None:
    assert lnurl.decode_lnurl(lnurl.encode_lnurl(url)) == url


@pytest.mark.parametrize("text", ["", "LNURL1", "lnbc1xyz", LUD01_LNURL[:-1] + "Q", "lightning:nonsense"])
def test_what_is_not_an_lnurl_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        lnurl.decode_lnurl(text)


def test_handles_are_unguessable_and_only_ours_reach_the_database() -> None:
    made = {lnurl.new_handle() for _ in range(2000)}
    assert len(made) == 2000
    assert all(lnurl.HANDLE_PATTERN.fullmatch(h) and lnurl.check_handle(h.upper()) == h for h in made)
    for name in ("alice", "loan-", "loan-abc", "loan-ABCDEFGHIJ0", "loan-abcdefghi_", "../loan-abcdefghij",
                 "loan-abcdefghij\n", "loan-ａｂｃｄｅｆｇｈｉｊ"):
        with pytest.raises(NotFound):
            lnurl.check_handle(name)


def test_the_metadata_names_the_loan_only_and_the_invoice_commits_to_its_bytes() -> None:
    """Static per pay code (issue 21, 2b): nothing that a repayment changes is in it."""
    text = lnurl.metadata(42, "loan-abcdefghij@microlend.example")
    entries = json.loads(text)
    assert entries == [
        ["text/plain", "Microlend loan 42. Any amount at any time counts."],
        ["text/identifier", "loan-abcdefghij@microlend.example"],
    ]
    assert lnurl.description_hash(text) == hashlib.sha256(text.encode()).hexdigest()


def test_bounds_are_a_sat_up_to_the_payoff_and_never_cross() -> None:
    assert lnurl.sendable(60_000_000) == (1000, 60_000_000)
    assert lnurl.sendable(150) == (150, 150)  # less than a sat owed: exactly that can be paid
    lnurl.check_amount(1000, 60_000_000)
    lnurl.check_amount(60_000_000, 60_000_000)
    lnurl.check_amount(150, 150)
    for amount, payoff in ((999, 60_000_000), (60_000_001, 60_000_000), (149, 150), (151, 150)):
        with pytest.raises(lnurl.LnurlRefusal):
            lnurl.check_amount(amount, payoff)


@pytest.mark.parametrize("raw", [None, "", " 1000", "1000 ", "1e3", "0x10", "+5", "-5", "1_000", "١٠٠٠", "²",
                                 "9" * 19])
def test_a_malformed_amount_is_refused(raw: str | None) -> None:
    with pytest.raises(lnurl.LnurlRefusal):
        lnurl.parse_amount(raw)


def test_amounts_are_whole_msat() -> None:
    assert lnurl.parse_amount("0") == 0 and lnurl.parse_amount("150000") == 150_000


def test_the_public_url_is_a_plain_address_and_names_the_host(tmp_path: Path) -> None:
    env = {"MICROLEND_DATA_DIR": str(tmp_path)}
    settings = settings_from_env({**env, "MICROLEND_PUBLIC_URL": "https://microlend.example/"})
    site = Site.of(settings.public_url)
    assert site.base_url == "https://microlend.example" and site.host == "microlend.example"
    assert pay_code(site, 7, "loan-abcdefghij").address == "loan-abcdefghij@microlend.example"
    assert lnurl.decode_lnurl(pay_code(site, 7, "loan-abcdefghij").lnurl) == \
        "https://microlend.example/.well-known/lnurlp/loan-abcdefghij"
    assert Site.of("http://127.0.0.1:8000").host == "127.0.0.1:8000"
    for bad in ("microlend.example", "ftp://microlend.example", "https://microlend.example/pay",
                "https://user@microlend.example", "https://micro lend.example"):
        with pytest.raises(SettingsError, match="MICROLEND_PUBLIC_URL"):
            settings_from_env({**env, "MICROLEND_PUBLIC_URL": bad})
