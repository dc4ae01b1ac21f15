"""Each number the hostile test of issue 10 sent, sent again: a clear 4xx and its message, never a 500.

Superscript digits ('²', %C2%B2) pass `str.isdigit()` but not `int()`; other
scripts' digits ('١٠٠٠') pass both. Every number now goes through
`marketplace.domain.numbers`: ASCII digits only, the same rules on pages and
in the API.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import invoices, loans, notes
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import loans as loan_service
from marketplace.services.accounts import create_user
from marketplace.settings import Settings
from tests.ledger_helpers import deposit_entry
from tests.web.support import PASSWORD, TestClient, count, csrf_token, make_client, sign_in

SUP2 = "\u00b2"  # '²'
ARABIC_1000 = "\u0661\u0660\u0660\u0660"  # '١٠٠٠'
PYTHON_TEXT = "invalid literal"
STORY = "A second sewing machine so I can take twice the orders."


@pytest.fixture
def people(settings: Settings, database: Database) -> Iterator[dict[str, TestClient]]:
    """A lender with 50,000 sat, a borrower with a request open for funding, and the operator."""
    made: dict[str, TestClient] = {}
    try:
        for name, role in (("lea", "lender"), ("bea", "borrower"), ("ops", "operator")):
            user_id = create_user(database, settings, f"{name}@example.org", PASSWORD, role)
            client = make_client(settings, database).__enter__()
            client.user_id = user_id
            made[name] = client
            assert sign_in(client, f"{name}@example.org").status_code == 303
        lender = made["lea"].user_id
        database.run(lambda c: ledger.post(c, [deposit_entry(
            c, ledger.account_id(c, ledger.user_account_code(lender, AccountKind.USER_AVAILABLE)), 50_000_000)]))
        terms = LoanTerms(20_000_000, 1800, 12, Frequency.WEEKLY, Method.ANNUITY)
        made["bea"].loan_id = loan_service.request_loan(database, settings, made["bea"].user_id, terms,
                                                        "business", STORY)
        yield made
    finally:
        for client in made.values():
            client.__exit__(None, None, None)


def _post(client: TestClient, path: str, data: dict[str, str]) -> object:
    return client.post(path, data={"csrf_token": csrf_token(client, "/dashboard"), **data}, follow_redirects=False)


def _refused(response: object, status: int, message: str) -> None:
    text: str = response.text  # type: ignore[attr-defined]
    assert response.status_code == status, (response.status_code, text[:500])  # type: ignore[attr-defined]
    assert message in text, text[:2000]
    assert PYTHON_TEXT not in text


# (who, path, status, message): every GET the issue lists.
GETS = [
    ("lea", f"/loans/{SUP2}", 404, "There is no such loan."),
    ("lea", f"/loans?page={SUP2}", 422, "The page number must be a whole number from 1"),
    ("lea", f"/statement?page={SUP2}", 422, "The page number must be a whole number from 1"),
    ("lea", f"/deposit/{SUP2}", 404, "There is no such invoice."),
    ("lea", f"/deposit/{SUP2}/status", 404, "There is no such invoice."),
    ("bea", f"/loans/1/pay/{SUP2}", 404, "There is no such invoice."),
    ("lea", f"/api/v1/loans?limit={SUP2}", 422, "limit must be a whole number from 1 to 100."),
    ("lea", f"/api/v1/loans/{SUP2}", 404, "There is no such loan."),
    ("lea", f"/api/v1/statement?offset={SUP2}", 422, "offset must be a whole number from 0 to"),
    ("lea", f"/api/v1/deposits/{SUP2}", 404, "There is no such invoice."),
    ("lea", f"/loans/market?term_min={SUP2}", 422, "The fewest installments must be a whole number."),
    ("ops", f"/operator/outbox?page={SUP2}", 422, "The page number must be a whole number from 1"),
    ("lea", f"/portfolio?page={SUP2}", 422, "The page number must be a whole number from 1"),
]


@pytest.mark.parametrize(("who", "path", "status", "message"), GETS, ids=[g[1] for g in GETS])
def test_unicode_digits_in_the_address_are_a_clear_4xx(people: dict[str, TestClient], who: str, path: str,
                                                        status: int, message: str) -> None:
    _refused(people[who].get(path), status, message)


POSTS = [
    ("lea", f"/notices/{SUP2}/read", 404, "There is no such notice."),
    ("lea", f"/settings/tokens/{SUP2}/revoke", 404, "There is no such token."),
    ("lea", f"/loans/notes/{SUP2}/withdraw", 404, "There is no such note."),
]


@pytest.mark.parametrize(("who", "path", "status", "message"), POSTS, ids=[p[1] for p in POSTS])
def test_unicode_digits_in_a_post_address_are_a_clear_4xx(people: dict[str, TestClient], who: str, path: str,
                                                           status: int, message: str) -> None:
    _refused(_post(people[who], path, {}), status, message)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("count", SUP2, "Enter the number of installments as a whole number."),
    ("rate", "1e999999999", "Enter the yearly interest rate as a number"),
    ("rate", "NaN", "Enter the yearly interest rate as a number"),
    ("rate", "-1", "The interest rate must be from 0 to 10,000 %."),
    ("amount_sat", SUP2, "Enter a whole number of sat, like 50000."),
    ("amount_sat", ARABIC_1000 + "0", "Enter a whole number of sat, like 50000."),
])
def test_the_request_form_and_its_preview_refuse_odd_numbers(people: dict[str, TestClient], database: Database,
                                                             field: str, value: str, message: str) -> None:
    bob = people["bea"]
    form = {"amount_sat": "20000", "rate": "18", "count": "12", "frequency": "weekly", "method": "annuity",
            "purpose": "business", "story": STORY, field: value}
    before = count(database, loans)
    # The borrower already has an open request; the terms are read (and refused) before that rule.
    _refused(_post(bob, "/loans/new", form), 422, message)
    assert count(database, loans) == before
    preview = bob.get("/loans/preview", params={k: form[k] for k in ("amount_sat", "rate", "count", "frequency")})
    _refused(preview, 200, message)  # a fragment htmx swaps in: 200 with the reason


@pytest.mark.parametrize("value", [SUP2, ARABIC_1000, "\uff11\uff10\uff10\uff10", "1e3", "1000.0", "-1000"])
def test_the_fund_form_refuses_what_the_api_refuses(people: dict[str, TestClient], database: Database,
                                                    value: str) -> None:
    lea, loan_id = people["lea"], people["bea"].loan_id
    page = _post(lea, f"/loans/{loan_id}/fund", {"amount_sat": value})
    assert page.status_code == 422 and PYTHON_TEXT not in page.text  # type: ignore[attr-defined]
    assert ("Enter a whole number of sat" in page.text  # type: ignore[attr-defined]
            or "The amount must be more than 0 sat." in page.text)  # type: ignore[attr-defined]
    api = lea.post(f"/api/v1/loans/{loan_id}/notes", json={"amount_sat": value},
                   headers={"X-CSRF-Token": csrf_token(lea, "/dashboard")})
    assert api.status_code == 422 and api.json()["error"]["code"] == "invalid_body"
    assert count(database, notes) == 0


def test_the_api_refuses_numbers_that_are_not_json_integers(people: dict[str, TestClient]) -> None:
    lea, loan_id = people["lea"], people["bea"].loan_id
    token = csrf_token(lea, "/dashboard")
    for raw in ("1000.0", "1e3", "1E+3", '"1000"', "true", "9" * 41):
        response = lea.post(f"/api/v1/loans/{loan_id}/notes", content='{"amount_sat": ' + raw + "}",
                            headers={"X-CSRF-Token": token, "Content-Type": "application/json"})
        assert response.status_code in (400, 422), (raw, response.text)
        message = response.json()["error"]["message"]
        assert "whole number" in message or "too long" in message, (raw, message)
        assert "Decimal(" not in message
    # An ASCII JSON integer is a pledge.
    good = lea.post(f"/api/v1/loans/{loan_id}/notes", json={"amount_sat": 1000}, headers={"X-CSRF-Token": token})
    assert good.status_code == 201, good.text


def test_the_repay_form_shows_no_python_text(people: dict[str, TestClient], database: Database) -> None:
    bea = people["bea"]
    before = count(database, invoices)
    _refused(_post(bea, f"/loans/{bea.loan_id}/repay", {"amount_sat": SUP2}), 422,
             "Enter an amount in sat, like 5000 or 5000.125")
    assert count(database, invoices) == before


def test_the_operators_channel_open_refuses_unicode_digits(people: dict[str, TestClient]) -> None:
    peer = "02" + "ab" * 32
    _refused(_post(people["ops"], "/operator/channels/open", {"peer_id": peer, "amount_sat": SUP2}), 422,
             "Enter the channel&#39;s size as a whole number of sat")


AUTOINVEST = {"enabled": "on", "budget_sat": "10000", "note_sat": "1000", "max_per_loan_sat": "2000",
              "max_per_loan_percent": "25", "max_per_borrower_sat": "3000", "max_term_days": "365",
              "min_rate_percent": "5", "max_expected_loss_percent": "10"}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("budget_sat", SUP2, "Give the budget as a whole number of sat"),
    ("budget_sat", ARABIC_1000, "Give the budget as a whole number of sat"),
    ("max_term_days", "\uff13\uff16\uff15", "Give the longest term as a whole number."),
    ("min_rate_percent", "1e3", "Give the lowest rate as a percentage"),
])
def test_the_autoinvest_rules_read_numbers_by_the_same_rules(people: dict[str, TestClient], field: str,
                                                             value: str, message: str) -> None:
    lea = people["lea"]
    _refused(_post(lea, "/autoinvest", {**AUTOINVEST, field: value}), 422, message)
    # The API takes msat as JSON integers: the same value there is no whole number either.
    for raw in (f'"{value}"', "1e3", "1.5"):
        api = lea.put("/api/v1/autoinvest", content='{"enabled": true, "budget_msat": ' + raw + "}",
                      headers={"X-CSRF-Token": csrf_token(lea, "/dashboard"), "Content-Type": "application/json"})
        assert api.status_code == 422, api.text
        assert "budget_msat: must be a whole number" in api.json()["error"]["message"], api.text
