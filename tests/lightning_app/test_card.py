"""The printable repayment card: who may open it, what it shows (and never shows), and its print stylesheet."""
from __future__ import annotations

import re

import segno

from marketplace.db.engine import Database
from marketplace.domain.lnurl import decode_lnurl
from marketplace.services import accounts
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.lightning_app.reach_support import BORROWER_NAME, STORY, active_loan, address_on_card
from tests.web.support import PASSWORD, TestClient, sign_in, sign_up


def test_the_card_is_for_the_borrower_and_the_operator_and_shows_no_identity(
        app_client: TestClient, database: Database, node_settings: Settings, devnode_session: DevNode) -> None:
    loan = active_loan(database, node_settings, devnode_session, "card")
    path = f"/loans/{loan.loan_id}/card"
    anonymous = app_client.get(path, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")

    assert sign_in(app_client, loan.borrower_email).status_code == 303
    page = app_client.get(f"/loans/{loan.loan_id}")
    assert f'href="{path}"' in page.text and "Repayment card" in page.text
    card = app_client.get(path)
    assert card.status_code == 200
    text = card.text
    found = re.fullmatch(r"(loan-[a-z0-9]{10})@testserver", address_on_card(text))
    coded = re.search(r"LNURL1[0-9A-Z]+", text)
    assert found is not None and coded is not None
    assert decode_lnurl(coded.group(0)) == f"http://testserver/.well-known/lnurlp/{found.group(1)}"
    # The QR is the static pay code itself, `lightning:LNURL1...` (upper case: the compact QR mode).
    expected = segno.make(f"LIGHTNING:{coded.group(0)}", error="m").svg_inline(
        scale=3, border=2, dark="#111", light="#fff", title="Lightning pay code QR code", omitsize=True)
    assert expected in text
    assert f"Loan {loan.loan_id}" in text and "Any amount, at any time, counts." in text
    assert "Installment" in text and re.search(r"every (Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day", text)
    assert re.search(r"next: [0-9,.]+ sat on \w+day \d{4}-\d\d-\d\d", text)
    assert '<link rel="stylesheet" href="/static/card.css">' in text
    for private in (BORROWER_NAME, "Rosa", STORY[:20], loan.borrower_email):
        assert private not in text
    # Asked again, the same code: it never changes.
    assert address_on_card(app_client.get(path).text) == found.group(0)

    css = app_client.get("/static/card.css")
    assert css.status_code == 200 and "@media print" in css.text and ".site-header" in css.text

    # Another borrower does not find it; a lender may not open cards; the operator may.
    assert sign_up(app_client, "card-other@example.org", role="borrower").status_code == 303
    assert app_client.get(path).status_code == 404
    assert sign_up(app_client, "card-lender@example.org", role="lender").status_code == 303
    assert app_client.get(path).status_code == 403
    assert f'href="{path}"' not in app_client.get(f"/loans/{loan.loan_id}").text
    accounts.create_user(database, node_settings, "card-ops@example.org", PASSWORD, "operator", "Ops")
    assert sign_in(app_client, "card-ops@example.org").status_code == 303
    seen = app_client.get(path)
    assert seen.status_code == 200 and address_on_card(seen.text) == found.group(0)
    for bad in ("/loans/0/card", "/loans/99999999/card", "/loans/abc/card", "/loans/" + "9" * 30 + "/card"):
        assert app_client.get(bad).status_code == 404, bad
