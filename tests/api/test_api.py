"""The JSON API through the real ASGI app: every endpoint, every role, the forbidden cases, bad bodies.

Every answer is also checked against the OpenAPI document: its status must be
documented for the operation and its body must match that status's schema.
"""
from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import Connection, select

from lightning.port import CreatedInvoice
from marketplace.db import disbursements, invoices, ledger
from marketplace.db.engine import Database
from marketplace.db.tables import api_tokens as api_tokens_table
from marketplace.domain.errors import InvalidInput, NotFound
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import accounts, api_tokens
from marketplace.services import loans as loan_service
from marketplace.settings import Settings
from marketplace.web.openapi import openapi_document
from marketplace.web.views.api_v1 import api_routes
from tests.ledger_helpers import deposit_entry
from tests.web.support import PASSWORD, TestClient, csrf_token, make_client, sign_in, sign_up

DOCUMENT = openapi_document()
PREFIX = "/api/v1"
STORY = "A bicycle cart to carry vegetables to the market."
LOAN = {"amount_sat": 20_000, "rate_percent": 24, "count": 4, "frequency": "weekly", "method": "annuity",
        "purpose": "transport", "story": STORY}


# --- checking answers against the document ------------------------------------------------------------------

_TEMPLATES = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in DOCUMENT["paths"]]


def template_of(path: str) -> str:
    bare = path.split("?", 1)[0].removeprefix(PREFIX)
    # The most specific template: fewest placeholders among the matches.
    matches = [t for rx, t in _TEMPLATES if rx.match(bare)]
    assert matches, f"{path} is not in the OpenAPI document"
    return min(matches, key=lambda t: t.count("{"))


def check_against_document(method: str, path: str, response: httpx.Response) -> None:
    operation = DOCUMENT["paths"][template_of(path)][method.lower()]
    documented = operation["responses"]
    assert str(response.status_code) in documented, (
        f"{method} {path} answered {response.status_code}, not documented: {response.text[:300]}")
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    errors = sorted(validator.iter_errors(response.json()), key=str)
    assert not errors, f"{method} {path} -> {response.status_code}: {errors[0]}"


@dataclass
class Api:
    client: TestClient
    database: Database
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def user(self, name: str, role: str, *, funded_sat: int = 0) -> str:
        """A user with an API token; `name` is how the test calls them."""
        user_id = accounts.create_user(self.database, self.settings, f"{name}@example.org", PASSWORD, role,
                                       name.title())
        self.ids[name] = user_id
        self.tokens[name] = api_tokens.create_token(self.database, user_id, f"{name}'s bot").token
        if funded_sat:
            self.fund(user_id, funded_sat)
        return self.tokens[name]

    def fund(self, user_id: int, amount_sat: int) -> None:
        def work(c: Connection) -> None:
            available = ledger.account_id(c, ledger.user_account_code(user_id, AccountKind.USER_AVAILABLE))
            ledger.post(c, [deposit_entry(c, available, amount_sat * 1000)])

        self.database.run(work)

    def call(self, who: str | None, method: str, path: str, *, check: bool = True,
             headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        sent = dict(headers or {})
        if who is not None:
            sent["Authorization"] = f"Bearer {self.tokens.get(who, who)}"
        response: httpx.Response = self.client.request(method, PREFIX + path, headers=sent, **kwargs)
        assert response.status_code != 500, response.text
        if check:
            check_against_document(method, PREFIX + path, response)
        return response

    def get(self, who: str | None, path: str, **kwargs: Any) -> httpx.Response:
        return self.call(who, "GET", path, **kwargs)

    def post(self, who: str | None, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        return self.call(who, "POST", path, **kwargs)

    def delete(self, who: str | None, path: str, **kwargs: Any) -> httpx.Response:
        return self.call(who, "DELETE", path, **kwargs)


@pytest.fixture
def api(settings: Settings, database: Database) -> Iterator[Api]:
    with make_client(settings, database) as client:
        yield Api(client, database, settings)


@pytest.fixture
def people(api: Api) -> Api:
    api.user("lea", "lender", funded_sat=50_000)
    api.user("leo", "lender", funded_sat=50_000)
    api.user("bea", "borrower")
    api.user("bob", "borrower")
    api.user("ops", "operator")
    return api


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    assert response.json()["error"]["message"]
    return code


def new_loan(api: Api, who: str = "bea", **changes: Any) -> int:
    response = api.post(who, "/loans", {**LOAN, **changes})
    assert response.status_code == 201, response.text
    loan_id: int = response.json()["loan"]["id"]
    return loan_id


def started_loan(api: Api, borrower: str, lender: str) -> int:
    """A loan funded by `lender` and disbursed a week ago, without a Lightning node."""
    terms = LoanTerms(20_000_000, 1800, 4, Frequency.WEEKLY, Method.ANNUITY)
    loan_id = loan_service.request_loan(api.database, api.settings, api.ids[borrower], terms, "farming",
                                        "Seeds and a water pump for the dry season.")
    loan_service.pledge(api.database, api.settings, api.ids[lender], loan_id, 20_000_000)
    hash_ = f"{loan_id:064x}"

    def start(c: Connection) -> None:
        payment_id = disbursements.hold(c, loan_id, api.ids[borrower], hash_, "lnbcrt-test", 10_000)
        disbursements.settle(c, payment_id, loan_id, hash_, 0, None,
                             today=loan_service.utc_today() - timedelta(days=3))

    api.database.run(start)
    return loan_id


def fake_invoice(database: Database, user_id: int, loan_id: int | None, purpose: str) -> int:
    def work(c: Connection) -> int:
        row = invoices.record_new(c, purpose, user_id, 1_000_000, "test", loan_id)
        invoices.mark_created(c, row.id, CreatedInvoice(row.label, f"{row.id:064x}", "lnbcrt10u1fake", "",
                                                        int(time.time()) + 600, row.id))
        return row.id

    return database.run(work)


# --- tokens: the service ------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_authenticates_until_revoked(
        database: Database, settings: Settings) -> None:
    user_id = accounts.create_user(database, settings, "tia@example.org", PASSWORD, "lender", "Tia")
    made = api_tokens.create_token(database, user_id, "  my   bot ")
    assert made.name == "my bot" and made.token.startswith("ml_") and len(made.token) > 40
    assert made.prefix == made.token[:11]
    stored = database.read(lambda c: c.execute(select(api_tokens_table)).one())
    assert stored.token_hash == hashlib.sha256(made.token.encode()).hexdigest()
    assert made.token not in [str(v) for v in stored]
    assert stored.last_used_at is None

    start = datetime.now(timezone.utc)
    holder = api_tokens.authenticate(database, made.token, now=start)
    assert holder is not None and holder.scope == "full"
    user = holder.user
    assert user.id == user_id and user.role.value == "lender"
    [listed] = api_tokens.list_tokens(database, user_id)
    assert listed.last_used_at == start and listed.active and listed.prefix == made.prefix
    # At most one write a minute.
    api_tokens.authenticate(database, made.token, now=start + timedelta(seconds=30))
    assert api_tokens.list_tokens(database, user_id)[0].last_used_at == start
    later = start + timedelta(seconds=61)
    api_tokens.authenticate(database, made.token, now=later)
    assert api_tokens.list_tokens(database, user_id)[0].last_used_at == later

    for wrong in ("", "ml_", made.token + "x", made.token[:-1], "Bearer " + made.token, "ml_" + "é" * 10,
                  "ml_" + "a" * 500):
        assert api_tokens.authenticate(database, wrong) is None

    other = accounts.create_user(database, settings, "ola@example.org", PASSWORD, "borrower", "Ola")
    with pytest.raises(NotFound):
        api_tokens.revoke_token(database, other, made.id)
    assert api_tokens.authenticate(database, made.token) is not None
    api_tokens.revoke_token(database, user_id, made.id)
    api_tokens.revoke_token(database, user_id, made.id)  # again is fine
    assert api_tokens.authenticate(database, made.token) is None
    assert not api_tokens.list_tokens(database, user_id)[0].active
    with pytest.raises(NotFound):
        api_tokens.revoke_token(database, user_id, 999_999)


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "bad\u202ename", "tab\x00"])
def test_a_token_needs_a_plain_name(database: Database, settings: Settings, name: str) -> None:
    user_id = accounts.create_user(database, settings, "tia@example.org", PASSWORD, "lender", "Tia")
    with pytest.raises(InvalidInput):
        api_tokens.create_token(database, user_id, name)
    assert api_tokens.list_tokens(database, user_id) == []


def test_active_tokens_are_capped(database: Database, settings: Settings) -> None:
    user_id = accounts.create_user(database, settings, "tia@example.org", PASSWORD, "lender", "Tia")
    made = [api_tokens.create_token(database, user_id, f"t{i}") for i in range(api_tokens.ACTIVE_TOKENS_MAX)]
    with pytest.raises(Exception, match="revoke one first"):
        api_tokens.create_token(database, user_id, "one too many")
    api_tokens.revoke_token(database, user_id, made[0].id)
    api_tokens.create_token(database, user_id, "now fine")


# --- tokens: the settings page ------------------------------------------------------------------------------


def test_the_settings_page_creates_lists_and_revokes_tokens(api: Api) -> None:
    client = api.client
    assert client.get("/settings", follow_redirects=False).status_code == 303  # to /signin
    assert sign_up(client, "sam@example.org", role="borrower", display_name="Sam").status_code == 303
    page = client.get("/settings")
    assert page.status_code == 200 and "no API tokens yet" in page.text

    # A form without its CSRF token is refused and makes nothing.
    refused = client.post("/settings/tokens", data={"name": "sneaky"})
    assert refused.status_code == 403
    made = client.post("/settings/tokens", data={"csrf_token": csrf_token(client, "/settings"), "name": "my bot"})
    assert made.status_code == 200
    token = re.search(r'<code id="token-value">([^<]+)</code>', made.text)
    assert token is not None and "shown only this once" in made.text
    plaintext = token.group(1)
    assert made.headers["cache-control"] == "no-store"

    again = client.get("/settings")
    assert plaintext not in again.text and plaintext[:11] in again.text and "my bot" in again.text
    assert "never" in again.text  # not used yet

    me = api.get(plaintext, "/me")
    assert me.status_code == 200 and me.json()["email"] == "sam@example.org" and me.json()["role"] == "borrower"
    assert " UTC" in client.get("/settings").text.split("my bot", 1)[1].split("</tr>", 1)[0]

    empty = client.post("/settings/tokens", data={"csrf_token": csrf_token(client, "/settings"), "name": " "})
    assert empty.status_code == 422 and "Give the token a name" in empty.text

    token_id = re.search(r'action="/settings/tokens/(\d+)/revoke"', again.text)
    assert token_id is not None
    # Another signed-in person cannot revoke it.
    assert sign_up(client, "eve@example.org", role="lender").status_code == 303
    stolen = client.post(f"/settings/tokens/{token_id.group(1)}/revoke",
                         data={"csrf_token": csrf_token(client, "/settings")})
    assert stolen.status_code == 404
    assert api.get(plaintext, "/me").status_code == 200

    assert sign_in(client, "sam@example.org").status_code == 303
    no_csrf = client.post(f"/settings/tokens/{token_id.group(1)}/revoke", data={})
    assert no_csrf.status_code == 403
    revoked = client.post(f"/settings/tokens/{token_id.group(1)}/revoke",
                          data={"csrf_token": csrf_token(client, "/settings")}, follow_redirects=False)
    assert revoked.status_code == 303 and revoked.headers["location"] == "/settings?done=revoked"
    after = client.get(revoked.headers["location"])
    assert "no longer works" in after.text and "revoked " in after.text
    gone = api.get(plaintext, "/me")
    assert gone.status_code == 401 and error_code(gone) == "invalid_token"


# --- who is calling -----------------------------------------------------------------------------------------


def test_me_and_balances_for_every_role(people: Api) -> None:
    for name, role in (("lea", "lender"), ("bea", "borrower"), ("ops", "operator")):
        me = people.get(name, "/me")
        assert me.status_code == 200
        assert me.json() == {"id": people.ids[name], "email": f"{name}@example.org", "role": role,
                             "display_name": name.title()}
        balances = people.get(name, "/me/balances")
        assert balances.status_code == 200
    assert people.get("lea", "/me/balances").json() == {"available_msat": 50_000_000, "reserved_msat": 0,
                                                        "pending_msat": 0}


@pytest.mark.parametrize("path", ["/me", "/me/balances", "/loans", "/loans/1", "/portfolio", "/statement",
                                  "/deposits/1", "/loans/1/repayments/1"])
def test_reads_need_credentials(people: Api, path: str) -> None:
    response = people.get(None, path)
    assert response.status_code == 401 and error_code(response) == "signin_required"
    for header in ("Bearer", "Bearer ", "Basic abc", "Bearer ml_unknown", "Token " + people.tokens["lea"],
                   "Bearer " + people.tokens["lea"] + "x"):
        bad = people.get(None, path, headers={"Authorization": header})
        assert bad.status_code == 401 and error_code(bad) == "invalid_token", header


@pytest.mark.parametrize("method, path", [("POST", "/loans"), ("POST", "/loans/1/notes"), ("DELETE", "/notes/1"),
                                          ("POST", "/deposits"), ("POST", "/loans/1/repayments"),
                                          ("POST", "/withdrawals")])
def test_writes_need_credentials(people: Api, method: str, path: str) -> None:
    # Without a bearer token a write is a browser's, and the CSRF check comes first.
    response = people.call(None, method, path, json={"amount_sat": 1000})
    assert response.status_code == 403 and error_code(response) == "csrf_failed"
    for header in ("Bearer", "Bearer ml_unknown", "Bearer " + people.tokens["lea"] + "x"):
        bad = people.call(None, method, path, json={"amount_sat": 1000}, headers={"Authorization": header})
        assert bad.status_code == 401 and error_code(bad) == "invalid_token", header
    revoked_id = api_tokens.list_tokens(people.database, people.ids["lea"])[0].id
    api_tokens.revoke_token(people.database, people.ids["lea"], revoked_id)
    gone = people.call("lea", method, path, json={"amount_sat": 1000})
    assert gone.status_code == 401 and error_code(gone) == "invalid_token"


ROLE_RULES = [
    # (method, path, body, roles allowed)
    ("POST", "/loans", LOAN, {"borrower"}),
    ("POST", "/loans/{loan}/notes", {"amount_sat": 1000}, {"lender"}),
    ("DELETE", "/notes/999", None, {"lender"}),
    ("GET", "/portfolio", None, {"lender"}),
    ("GET", "/statement", None, {"lender", "borrower"}),
    ("POST", "/deposits", {"amount_sat": 1000}, {"lender"}),
    ("GET", "/deposits/999", None, {"lender"}),
    ("POST", "/loans/{loan}/repayments", {}, {"borrower"}),
    ("GET", "/loans/{loan}/repayments/999", None, {"borrower"}),
    ("POST", "/withdrawals", {"bolt11": "lnbcrt1"}, {"lender", "borrower"}),
    ("GET", "/loans", None, {"lender", "borrower", "operator"}),
    ("GET", "/loans/{loan}", None, {"lender", "borrower", "operator"}),
]


def test_every_endpoint_checks_the_role(people: Api) -> None:
    loan_id = new_loan(people, "bob")
    for method, path, body, allowed in ROLE_RULES:
        for name, role in (("leo", "lender"), ("bea", "borrower"), ("ops", "operator")):
            response = people.call(name, method, path.format(loan=loan_id),
                                   **({"json": body} if body is not None else {}))
            if role in allowed:
                assert response.status_code != 403, (method, path, role, response.text)
            else:
                assert response.status_code == 403 and error_code(response) == "forbidden", (method, path, role)


def test_a_browser_session_works_but_needs_its_csrf_token_to_change_anything(people: Api) -> None:
    client = people.client
    assert sign_up(client, "sue@example.org", role="borrower", display_name="Sue").status_code == 303
    me = people.get(None, "/me")
    assert me.status_code == 200 and me.json()["email"] == "sue@example.org"
    refused = people.post(None, "/loans", LOAN)
    assert refused.status_code == 403 and error_code(refused) == "csrf_failed"
    # A bearer token does not lift the check while the session cookie rides along.
    both = people.post("bea", "/loans", LOAN)
    assert both.status_code == 403 and error_code(both) == "csrf_failed"
    token = csrf_token(client, "/dashboard")
    made = people.post(None, "/loans", LOAN, headers={"X-CSRF-Token": token})
    assert made.status_code == 201 and made.json()["borrower_view"] is not None
    client.cookies.clear()
    assert people.post("bea", "/loans", LOAN).status_code == 201


# --- loans --------------------------------------------------------------------------------------------------


def test_a_borrower_asks_for_a_loan_and_everyone_reads_it_but_only_the_borrower_sees_private_bits(
        people: Api) -> None:
    made = people.post("bea", "/loans", {**LOAN, "rate_percent": 18.5})
    assert made.status_code == 201
    detail = made.json()
    loan = detail["loan"]
    assert loan["status"] == "funding" and loan["amount_msat"] == 20_000_000 and loan["amount_sat"] == 20_000
    assert loan["annual_rate_bps"] == 1850 and loan["apr_bps"] > 0 and loan["funding_open"] is True
    assert loan["story"] == STORY and loan["borrower_name"] == "Bea"
    assert len(detail["schedule"]["installments"]) == 4 and detail["schedule"]["scheduled"] is False
    assert detail["borrower_view"] == {"next_due": None, "payoff_msat": 0, "principal_outstanding_msat": 0,
                                      "interest_accrued_msat": 0,
                                      "days_past_due": 0, "disbursement": None}
    datetime.fromisoformat(loan["funding_deadline"])
    for name in ("lea", "bob", "ops"):
        seen = people.get(name, f"/loans/{loan['id']}")
        assert seen.status_code == 200 and seen.json()["borrower_view"] is None
        # The same loan, but only its borrower sees her own name.
        shown = seen.json()["loan"]["borrower_name"]
        assert shown.startswith("borrower #") and seen.json()["loan"] == {**loan, "borrower_name": shown}
    bps = people.post("bob", "/loans", {**{k: v for k, v in LOAN.items() if k != "rate_percent"},
                                        "rate_bps": 1200, "method": "equal_principal", "frequency": "monthly"})
    assert bps.status_code == 201 and bps.json()["loan"]["annual_rate_bps"] == 1200
    assert bps.json()["loan"]["method"] == "equal_principal"

    # One open loan at a time.
    second = people.post("bea", "/loans", LOAN)
    assert 400 <= second.status_code < 500 and error_code(second)

    for missing in ("/loans/999999", "/loans/0", "/loans/abc", "/loans/-1", "/loans/" + "9" * 30):
        response = people.get("lea", missing)
        assert response.status_code == 404 and error_code(response) == "not_found", missing


def test_the_list_of_loans_filters_and_pages_within_bounds(people: Api) -> None:
    first = new_loan(people, "bea")
    second = new_loan(people, "bob")
    listed = people.get("lea", "/loans")
    assert listed.status_code == 200
    body = listed.json()
    assert [loan["id"] for loan in body["loans"]] == [second, first]
    assert body["limit"] == 20 and body["offset"] == 0 and body["has_more"] is False
    page = people.get("lea", "/loans?limit=1").json()
    assert [loan["id"] for loan in page["loans"]] == [second] and page["has_more"] is True
    page2 = people.get("lea", "/loans?limit=1&offset=1").json()
    assert [loan["id"] for loan in page2["loans"]] == [first] and page2["has_more"] is False
    assert people.get("lea", "/loans?status=active").json()["loans"] == []
    for query in ("limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "offset=-1", "offset=1000001",
                  "status=nope", "status=", "limit=" + "9" * 40, "page=2", "user_id=1"):
        response = people.get("lea", f"/loans?{query}")
        assert response.status_code == 422 and error_code(response) == "invalid_parameter", query


BAD_LOAN_BODIES: list[tuple[Any, int, str]] = [
    ("not json", 400, "bad_json"),
    ("", 400, "bad_json"),
    ("{", 400, "bad_json"),
    ('{"amount_sat": NaN}', 400, "bad_json"),
    ('{"amount_sat": Infinity}', 400, "bad_json"),
    ("[" * 5000 + "]" * 5000, 400, "bad_json"),
    ('{"amount_sat": 1' + "0" * 5000 + "}", 400, "bad_json"),
    ("\xff\xfe", 400, "bad_json"),
    ([], 422, "invalid_body"),
    ("null", 422, "invalid_body"),
    ("123", 422, "invalid_body"),
    ({}, 422, "invalid_body"),
    ({**LOAN, "amount_sat": "20000"}, 422, "invalid_body"),
    ({**LOAN, "amount_sat": 20000.5}, 422, "invalid_body"),
    ({**LOAN, "amount_sat": True}, 422, "invalid_body"),
    ({**LOAN, "amount_sat": 0}, 422, "invalid_body"),
    ({**LOAN, "amount_sat": -5}, 422, "invalid_body"),
    ({**LOAN, "amount_sat": 10 ** 30}, 422, "invalid_body"),
    ({**LOAN, "amount_sat": 10 ** 15}, 422, "invalid_input"),  # valid JSON, beyond the marketplace's limits
    ({**LOAN, "rate_percent": -1}, 422, "invalid_body"),
    ({**LOAN, "rate_percent": 18.123}, 422, "invalid_input"),
    ({**LOAN, "rate_percent": 1e-9}, 422, "invalid_input"),
    ({**LOAN, "rate_percent": 9999}, 422, "invalid_input"),
    ({**LOAN, "rate_percent": "18"}, 422, "invalid_body"),
    ({**LOAN, "rate_bps": 1800}, 422, "invalid_body"),  # both rates
    ({k: v for k, v in LOAN.items() if k != "rate_percent"}, 422, "invalid_body"),  # no rate
    ({**LOAN, "count": 0}, 422, "invalid_body"),
    ({**LOAN, "count": 1000}, 422, "invalid_input"),
    ({**LOAN, "count": 10 ** 9}, 422, "invalid_body"),
    ({**LOAN, "frequency": "hourly"}, 422, "invalid_body"),
    ({**LOAN, "method": "balloon"}, 422, "invalid_body"),
    ({**LOAN, "purpose": "yacht"}, 422, "invalid_body"),
    ({**LOAN, "story": "short"}, 422, "invalid_input"),
    ({**LOAN, "story": "x" * 5000}, 422, "invalid_body"),
    ({**LOAN, "story": 5}, 422, "invalid_body"),
    ({**LOAN, "surprise": 1}, 422, "invalid_body"),
    ({**LOAN, "x" * 10_000: 1}, 422, "invalid_body"),
]


@pytest.mark.parametrize("body, status, code", BAD_LOAN_BODIES)
def test_a_bad_loan_request_is_refused_with_a_stable_code(people: Api, body: Any, status: int, code: str) -> None:
    kwargs: dict[str, Any] = {"json": body} if not isinstance(body, str) else {
        "content": body.encode("latin-1") if body == "\xff\xfe" else body.encode(),
        "headers": {"Content-Type": "application/json"}}
    response = people.call("bea", "POST", "/loans", **kwargs)
    assert response.status_code == status, response.text
    assert error_code(response) == code
    assert len(response.json()["error"]["message"]) < 400
    assert people.get("bea", "/loans").json()["loans"] == []


def test_a_body_over_64_kib_is_refused(people: Api) -> None:
    response = people.call("bea", "POST", "/loans", content=b'{"story": "' + b"x" * 70_000 + b'"}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and error_code(response) == "too_large"


# --- notes, portfolio and statement -------------------------------------------------------------------------


def test_lenders_fund_and_withdraw_notes_and_never_touch_another_lenders(people: Api) -> None:
    loan_id = new_loan(people, "bea")
    funded = people.post("lea", f"/loans/{loan_id}/notes", {"amount_sat": 12_000, "idempotency_key": "k" * 20})
    assert funded.status_code == 201
    note = funded.json()["note"]
    assert note["status"] == "pledged" and note["amount_msat"] == 12_000_000 and note["loan_id"] == loan_id
    assert funded.json()["loan"]["funded_msat"] == 12_000_000 and funded.json()["loan"]["funded_percent"] == 60
    again = people.post("lea", f"/loans/{loan_id}/notes", {"amount_sat": 12_000, "idempotency_key": "k" * 20})
    assert again.status_code == 201 and again.json()["note"]["id"] == note["id"]
    # The same key for another amount or another loan is refused, not answered with the first note.
    other_amount = people.post("lea", f"/loans/{loan_id}/notes", {"amount_sat": 2_000, "idempotency_key": "k" * 20})
    assert other_amount.status_code == 409 and "different pledge" in other_amount.json()["error"]["message"]
    # The same key from another lender is their own request.
    other = people.post("leo", f"/loans/{loan_id}/notes", {"amount_sat": 3_000, "idempotency_key": "k" * 20})
    assert other.status_code == 201 and other.json()["note"]["id"] != note["id"]
    assert people.get("lea", "/me/balances").json()["reserved_msat"] == 12_000_000

    seen = people.get("lea", f"/loans/{loan_id}").json()
    assert [n["id"] for n in seen["my_notes"]] == [note["id"]]
    assert [(f["label"], f["amount_msat"], f["is_you"]) for f in seen["funders"]] == [
        ("Lender #1", 12_000_000, True), ("Lender #2", 3_000_000, False)]

    for body in ({"amount_sat": 0}, {"amount_sat": -1}, {"amount_sat": "5"}, {"amount_sat": 10 ** 20}, {},
                 {"amount_sat": 1000, "idempotency_key": "short"}, {"amount_sat": 1000, "extra": True}):
        response = people.post("lea", f"/loans/{loan_id}/notes", body)
        assert response.status_code == 422 and error_code(response) == "invalid_body", body
    too_much = people.post("leo", f"/loans/{loan_id}/notes", {"amount_sat": 6_000})
    assert too_much.status_code == 422 and error_code(too_much) == "invalid_input"  # more than is left
    tiny = people.post("leo", f"/loans/{loan_id}/notes", {"amount_sat": 10})
    assert tiny.status_code == 422
    assert people.post("leo", "/loans/999999/notes", {"amount_sat": 1000}).status_code == 404

    stolen = people.delete("leo", f"/notes/{note['id']}")
    assert stolen.status_code == 404 and error_code(stolen) == "not_found"
    withdrawn = people.delete("lea", f"/notes/{note['id']}")
    assert withdrawn.status_code == 200 and withdrawn.json()["note"]["status"] == "released"
    twice = people.delete("lea", f"/notes/{note['id']}")
    assert twice.status_code == 409 and error_code(twice) == "conflict"
    assert people.delete("lea", "/notes/abc").status_code == 404
    assert people.get("lea", "/me/balances").json() == {"available_msat": 50_000_000, "reserved_msat": 0,
                                                        "pending_msat": 0}

    rest = people.post("leo", f"/loans/{loan_id}/notes", {"amount_sat": 17_000})
    assert rest.status_code == 201 and rest.json()["loan"]["status"] == "funded"
    closed = people.post("lea", f"/loans/{loan_id}/notes", {"amount_sat": 1_000})
    assert closed.status_code == 409 and error_code(closed) == "conflict"
    poor_id = accounts.create_user(people.database, people.settings, "poor@example.org", PASSWORD, "lender", "P")
    people.tokens["poor"] = api_tokens.create_token(people.database, poor_id, "bot").token
    open_id = new_loan(people, "bob")
    broke = people.post("poor", f"/loans/{open_id}/notes", {"amount_sat": 1_000})
    assert broke.status_code in (409, 422) and error_code(broke) in ("insufficient_funds", "invalid_input")


def test_the_portfolio_and_statement_are_the_callers_own(people: Api) -> None:
    active_id = started_loan(people, "bea", "lea")
    open_id = new_loan(people, "bob")
    pledged = people.post("lea", f"/loans/{open_id}/notes", {"amount_sat": 5_000}).json()["note"]

    mine = people.get("lea", "/portfolio")
    assert mine.status_code == 200
    body = mine.json()
    assert body["totals"] == {"available_msat": 25_000_000, "reserved_msat": 5_000_000,
                              "pledged_msat": 5_000_000, "principal_outstanding_msat": 20_000_000,
                              "income_msat": 0, "received_msat": 0, "losses_msat": 0, "net_return_msat": 0}
    assert body["by_state"] == {"active": 1, "pledged": 1}
    assert {(n["note"]["status"], n["loan"]["id"]) for n in body["notes"]} == {("active", active_id),
                                                                              ("pledged", open_id)}
    assert people.get("leo", "/portfolio").json()["notes"] == []

    statement = people.get("lea", "/statement").json()
    lines = statement["lines"]
    assert statement["has_more"] is False and statement["limit"] == 50
    kinds = [(line["kind"], line["account"], line["amount_msat"]) for line in lines]
    assert ("deposit", "available", 50_000_000) in kinds
    assert ("pledge", "available", -5_000_000) in kinds and ("pledge", "reserved", 5_000_000) in kinds
    assert lines[0]["entry_id"] >= lines[-1]["entry_id"]
    assert sum(line["amount_msat"] for line in lines if line["account"] == "available") == 25_000_000
    datetime.fromisoformat(lines[0]["posted_at"])
    paged = people.get("lea", "/statement?limit=1&offset=1").json()
    assert paged["lines"] == lines[1:2] and paged["has_more"] is True
    assert people.get("leo", "/statement").json()["lines"][0]["amount_msat"] == 50_000_000
    assert len(people.get("leo", "/statement").json()["lines"]) == 1
    assert people.get("bea", "/statement").status_code == 200  # the disbursement went out over Lightning
    for query in ("limit=0", "limit=201", "offset=-3", "offset=x"):
        bad = people.get("lea", f"/statement?{query}")
        assert bad.status_code == 422 and error_code(bad) == "invalid_parameter"

    detail = people.get("bea", f"/loans/{active_id}").json()
    private = detail["borrower_view"]
    assert detail["schedule"]["scheduled"] is True and detail["loan"]["status"] == "active"
    assert private["next_due"] is not None and private["principal_outstanding_msat"] == 20_000_000
    assert private["disbursement"]["payment_hash"] == f"{active_id:064x}"  # settled without the node
    assert people.get("lea", f"/loans/{active_id}").json()["borrower_view"] is None
    assert pledged["status"] == "pledged"


# --- money: without a node, the node's absence is a clear 503 ----------------------------------------------


def test_deposits_are_the_lenders_own_and_a_missing_node_is_a_503(people: Api) -> None:
    made = people.post("lea", "/deposits", {"amount_sat": 10_000})
    assert made.status_code == 503 and error_code(made) == "lightning_unavailable"
    for body in ({}, {"amount_sat": 0}, {"amount_sat": -1}, {"amount_sat": 1.5}, {"amount_sat": None},
                 {"amount_sat": 10 ** 19}):
        response = people.post("lea", "/deposits", body)
        assert response.status_code == 422 and error_code(response) == "invalid_body", body
    huge = people.post("lea", "/deposits", {"amount_sat": 10 ** 12})
    assert huge.status_code == 422 and error_code(huge) == "invalid_input"

    own = fake_invoice(people.database, people.ids["lea"], None, "deposit")
    shown = people.get("lea", f"/deposits/{own}")
    assert shown.status_code == 200
    assert shown.json()["bolt11"] == "lnbcrt10u1fake" and shown.json()["status"] == "unpaid"
    assert shown.json()["amount_sat"] == 1000
    assert datetime.fromisoformat(shown.json()["expires_at"]) > datetime.now(timezone.utc)
    assert people.get("leo", f"/deposits/{own}").status_code == 404
    loan_id = new_loan(people, "bea")
    repayment = fake_invoice(people.database, people.ids["lea"], loan_id, "repayment")
    assert people.get("lea", f"/deposits/{repayment}").status_code == 404


def test_repayment_invoices_are_the_borrowers_own(people: Api) -> None:
    loan_id = started_loan(people, "bea", "lea")
    made = people.post("bea", f"/loans/{loan_id}/repayments")
    assert made.status_code == 503 and error_code(made) == "lightning_unavailable"
    assert people.post("bea", f"/loans/{loan_id}/repayments", {"amount_sat": 5}).status_code == 503
    assert people.post("bob", f"/loans/{loan_id}/repayments", {}).status_code == 404
    too_much = people.post("bea", f"/loans/{loan_id}/repayments", {"amount_sat": 10_000_000})
    assert too_much.status_code == 422 and error_code(too_much) == "invalid_input"
    bad = people.post("bea", f"/loans/{loan_id}/repayments", {"amount_sat": "all"})
    assert bad.status_code == 422 and error_code(bad) == "invalid_body"
    not_json = people.call("bea", "POST", f"/loans/{loan_id}/repayments", content=b"amount=5")
    assert not_json.status_code == 400 and error_code(not_json) == "bad_json"
    open_id = new_loan(people, "bob")
    idle = people.post("bob", f"/loans/{open_id}/repayments", {})
    assert idle.status_code == 409 and error_code(idle) == "conflict"

    invoice_id = fake_invoice(people.database, people.ids["bea"], loan_id, "repayment")
    shown = people.get("bea", f"/loans/{loan_id}/repayments/{invoice_id}")
    assert shown.status_code == 200 and shown.json()["loan_id"] == loan_id and shown.json()["purpose"] == "repayment"
    assert people.get("bob", f"/loans/{loan_id}/repayments/{invoice_id}").status_code == 404
    assert people.get("bea", f"/loans/{open_id}/repayments/{invoice_id}").status_code == 404


def test_withdrawals_refuse_bad_bodies_and_a_missing_node(people: Api) -> None:
    for body in ({}, {"bolt11": ""}, {"bolt11": 5}, {"bolt11": "x" * 5000}, {"bolt11": "lnbc", "amount_sat": 0},
                 {"bolt11": "lnbc", "amount_sat": -2}, {"bolt11": "lnbc", "extra": 1}):
        response = people.post("lea", "/withdrawals", body)
        assert response.status_code == 422 and error_code(response) == "invalid_body", body
    blank = people.post("lea", "/withdrawals", {"bolt11": "   "})
    assert blank.status_code == 422 and error_code(blank) == "invalid_body"
    offline = people.post("lea", "/withdrawals", {"bolt11": "lnbcrt1"})
    assert offline.status_code == 503 and error_code(offline) == "lightning_unavailable"
    assert people.get("lea", "/me/balances").json()["pending_msat"] == 0


# --- the document itself ------------------------------------------------------------------------------------


def test_the_document_is_public_and_lists_exactly_the_routes(people: Api) -> None:
    served = people.get(None, "/openapi.json")
    assert served.status_code == 200 and served.json() == DOCUMENT
    assert DOCUMENT["openapi"].startswith("3.1")
    assert DOCUMENT["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": DOCUMENT["components"]["securitySchemes"]["bearer"][
            "description"]}
    routed: dict[str, set[str]] = {}
    for route in api_routes():
        path = getattr(route, "path").removeprefix(PREFIX)
        routed.setdefault(path, set()).update(m.lower() for m in getattr(route, "methods") if m != "HEAD")
    documented = {path: set(methods) for path, methods in DOCUMENT["paths"].items()}
    assert routed == documented
    for path, methods in DOCUMENT["paths"].items():
        for method, operation in methods.items():
            statuses = set(operation["responses"])
            if path != "/openapi.json":
                assert {"401", "403"} <= statuses, (method, path)
                for response in operation["responses"].values():
                    assert "application/json" in response["content"]
            if "{" in path:
                assert "404" in statuses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= statuses, (method, path)


def test_the_old_balances_route_still_answers_a_browser(people: Api) -> None:
    assert sign_up(people.client, "sid@example.org").status_code == 303
    response = people.get(None, "/me/balances")
    assert response.status_code == 200 and response.json()["available_msat"] == 0
    ignored = people.get(None, f"/me/balances?user_id={people.ids['lea']}")
    assert ignored.status_code == 200 and ignored.json()["available_msat"] == 0
    assert people.get("lea", "/me?x=1").status_code == 422


def test_last_used_is_written_when_a_token_is_used(people: Api) -> None:
    before = api_tokens.list_tokens(people.database, people.ids["lea"])[0]
    assert before.last_used_at is None
    people.get("lea", "/me")
    assert api_tokens.list_tokens(people.database, people.ids["lea"])[0].last_used_at is not None


def test_too_many_invoices_is_a_documented_429(settings: Settings, database: Database) -> None:
    with make_client(settings.replace(invoice_limit_count=1), database) as client:
        api = Api(client, database, settings)
        api.user("lea", "lender")
        api.user("bea", "borrower")
        fake_invoice(database, api.ids["lea"], None, "deposit")
        refused = api.post("lea", "/deposits", {"amount_sat": 1_000})
        assert refused.status_code == 429 and error_code(refused) == "too_many_invoices"
        assert refused.headers["retry-after"].isdigit()
        loan_id = new_loan(api, "bea")
        fake_invoice(database, api.ids["bea"], loan_id, "repayment")
        assert api.post("bea", f"/loans/{loan_id}/repayments", {"amount_sat": 1}).status_code in (409, 429)


def test_auto_invest_rules_through_the_api(people: Api) -> None:
    assert people.get("lea", "/autoinvest").json() == {"rules": None, "matching_requests": 0, "held_msat": 0,
                                                       "available_msat": 50_000_000, "nothing_to_buy": None}
    new_loan(people)
    saved = people.call("lea", "PUT", "/autoinvest", json={"enabled": True, "budget_msat": 20_000_000,
                                                            "grades": ["A", "B", "C", "D", "E"],
                                                            "max_expected_loss_bps": 10_000})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["rules"]["budget_msat"] == 20_000_000 and body["rules"]["reinvest"] is True
    assert body["matching_requests"] == 1 and body["nothing_to_buy"] is None
    # Issue 19: a budget below one note answered 200 and "1 matching request", then bought nothing unsaid.
    short = people.call("lea", "PUT", "/autoinvest", json={"enabled": True, "budget_msat": 2_000_000,
                                                            "note_msat": 5_000_000, "max_per_loan_bps": 10_000,
                                                            "max_expected_loss_bps": 10_000})
    assert short.status_code == 200 and short.json()["matching_requests"] == 1
    assert "less than one of your notes (5,000 sat)" in short.json()["nothing_to_buy"]
    people.call("lea", "PUT", "/autoinvest", json={"enabled": True, "budget_msat": 20_000_000,
                                                   "grades": ["A", "B", "C", "D", "E"], "max_expected_loss_bps": 10_000})
    too_much = people.call("lea", "PUT", "/autoinvest", json={"enabled": True, "budget_msat": 60_000_000})
    assert too_much.status_code == 422 and "more than the" in too_much.json()["error"]["message"]
    bad = people.call("lea", "PUT", "/autoinvest", json={"enabled": True, "budget_msat": -1})
    assert bad.status_code == 422 and error_code(bad) == "invalid_body"
    odd = people.call("lea", "PUT", "/autoinvest", json={"enabled": True, "budget_msat": 1, "note_msat": 1_500_000})
    assert odd.status_code == 422 and "whole number of 1,000 sat notes" in odd.json()["error"]["message"]
    assert people.get("lea", "/autoinvest").json()["rules"]["budget_msat"] == 20_000_000  # nothing changed
    assert people.get("bea", "/autoinvest").status_code == 403
