"""The lender pages through the real ASGI app: the marketplace list, the portfolio and the statement (+ CSV)."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import jinja2
import pytest
from sqlalchemy import Connection, select, update

from marketplace.db import disbursements, ledger
from marketplace.db.engine import Database
from marketplace.db.tables import accounts, journal_entries, journal_lines, loans, notes
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.domain.money import format_msat
from marketplace.services import loans as loan_service
from marketplace.services import marketplace_list as market
from marketplace.services import statements
from marketplace.services.accounts import create_user
from marketplace.settings import Settings
from marketplace.web.i18n import install_i18n
from tests.ledger_helpers import deposit_entry
from tests.web.support import PASSWORD, TestClient, csrf_token, csrf_token_in, make_client, sign_in, sign_up

STORY = "A second sewing machine so I can take twice the orders."
_LOAN_LINK = re.compile(r'href="/loans/(\d+)"')
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clients(settings: Settings, database: Database) -> Iterator[dict[str, TestClient]]:
    """Signed-in clients: two lenders with money, one borrower; plus a signed-out client ('anon')."""
    made: dict[str, TestClient] = {}
    try:
        for name, role in (("lea", "lender"), ("leo", "lender"), ("bea", "borrower"), ("ops", "operator")):
            user_id = create_user(database, settings, f"{name}@example.org", PASSWORD, role, name.capitalize())
            client = make_client(settings, database).__enter__()
            made[name] = client
            client.user_id = user_id
            assert sign_in(client, f"{name}@example.org").status_code == 303
        made["anon"] = make_client(settings, database).__enter__()
        for name, amount_sat, memo in (("lea", 200_000, "lea first deposit"), ("leo", 300_000, "leo-private-memo")):
            _deposit(database, uid(made[name]), amount_sat * 1000, memo)
        yield made
    finally:
        for client in made.values():
            client.__exit__(None, None, None)


def uid(client: TestClient) -> int:
    return int(client.user_id)


def _deposit(database: Database, user_id: int, amount_msat: int, memo: str = "") -> None:
    def work(c: Connection) -> None:
        available = ledger.account_id(c, ledger.user_account_code(user_id, AccountKind.USER_AVAILABLE))
        draft = deposit_entry(c, available, amount_msat)
        ledger.post(c, [EntryDraft(draft.kind, draft.lines, None, memo)])
    database.run(work)


_counter = iter(range(1, 10_000))


def make_loan(database: Database, settings: Settings, *, amount_sat: int = 20_000, rate_bps: int = 1800,
              count: int = 12, frequency: Frequency = Frequency.WEEKLY, purpose: str = "business",
              grade: str | None = None, deadline_in: timedelta | None = None) -> int:
    """An open request by a fresh borrower; grade and deadline set directly when asked."""
    n = next(_counter)
    borrower = create_user(database, settings, f"borrower{n}-{id(database)}@example.org", PASSWORD, "borrower",
                           f"B{n}")
    terms = LoanTerms(amount_sat * 1000, rate_bps, count, frequency, Method.ANNUITY)
    loan_id = loan_service.request_loan(database, settings, borrower, terms, purpose, STORY)
    changes: dict[str, object] = {}
    if grade is not None:
        changes["grade"] = grade
    if deadline_in is not None:
        changes["funding_deadline"] = datetime.now(timezone.utc) + deadline_in
    if changes:
        database.run(lambda c: c.execute(update(loans).where(loans.c.id == loan_id).values(**changes)))
    return loan_id


def listed(text: str) -> list[int]:
    return [int(x) for x in _LOAN_LINK.findall(text)]


@pytest.fixture
def book(clients: dict[str, TestClient], database: Database, settings: Settings) -> dict[str, int]:
    """Five open requests that differ in every filtered field, one closed and one past its deadline."""
    ids = {
        "a": make_loan(database, settings, amount_sat=10_000, rate_bps=1000, count=4, frequency=Frequency.DAILY,
                       purpose="health", grade="A", deadline_in=timedelta(days=1)),
        "b": make_loan(database, settings, amount_sat=50_000, rate_bps=2500, count=8, frequency=Frequency.WEEKLY,
                       purpose="business", grade="B", deadline_in=timedelta(days=5)),
        "c": make_loan(database, settings, amount_sat=30_000, rate_bps=1850, count=6,
                       frequency=Frequency.MONTHLY, purpose="farming", grade="C", deadline_in=timedelta(days=3)),
        "d": make_loan(database, settings, amount_sat=80_000, rate_bps=4000, count=20, frequency=Frequency.WEEKLY,
                       purpose="education", grade="D", deadline_in=timedelta(days=10)),
        "e": make_loan(database, settings, amount_sat=40_000, rate_bps=3000, count=10, frequency=Frequency.WEEKLY,
                       purpose="business", grade="E", deadline_in=timedelta(days=7)),
        "past": make_loan(database, settings, grade="A", deadline_in=timedelta(seconds=-5)),
        "closed": make_loan(database, settings, grade="A"),
    }
    database.run(lambda c: c.execute(update(loans).where(loans.c.id == ids["closed"]).values(status="expired")))
    leo = uid(clients["leo"])
    # Funded shares: b 60 % (30,000 of 50,000 left 20,000), d 25 % (20,000 of 80,000), the rest 0.
    loan_service.pledge(database, settings, leo, ids["b"], 30_000_000)
    loan_service.pledge(database, settings, leo, ids["d"], 20_000_000)
    return ids


def names(book: dict[str, int], found: list[int]) -> list[str]:
    back = {v: k for k, v in book.items()}
    return [back[i] for i in found]


def sat_text(amount_msat: int) -> str:
    """An amount as pages show it: whole sats, rounded down."""
    return f"{amount_msat // 1000:,} sat"


def test_visitors_read_the_market_without_fund_forms(clients: dict[str, TestClient], book: dict[str, int]) -> None:
    page = clients["anon"].get("/loans/market")
    assert page.status_code == 200
    assert names(book, listed(page.text)) == ["e", "d", "c", "b", "a"]
    assert 'name="amount_sat"' not in page.text and "Start lending" in page.text
    loan = clients["anon"].get(f"/loans/{book['a']}")
    assert loan.status_code == 200 and "Sign up to fund this loan" in loan.text
    assert "borrower #" in loan.text  # pseudonymous: no borrower's name


# --- the marketplace list ------------------------------------------------------------------------------------


def test_the_market_lists_only_open_requests_newest_first(clients: dict[str, TestClient],
                                                          book: dict[str, int]) -> None:
    page = clients["lea"].get("/loans/market")
    assert page.status_code == 200
    assert names(book, listed(page.text)) == ["e", "d", "c", "b", "a"]
    assert 'hx-get="/loans/market"' in page.text and 'hx-target="#results"' in page.text
    assert 'hx-push-url="true"' in page.text and 'method="get" action="/loans/market"' in page.text
    assert 'id="results"' in page.text and "5 matching requests" in page.text
    assert page.text.count("in 100 not repaid in full") == 5  # grade and the chance of default in plain words
    assert "style=" not in page.text and "<script" not in page.text.split("</head>")[1]
    # A lender gets a "fund a note" form on every row, with the CSRF field and a per-row request key.
    assert page.text.count('name="amount_sat"') == 5
    assert page.text.count('name="csrf_token"') >= 6
    for loan_id in listed(page.text):
        assert f'action="/loans/{loan_id}/fund"' in page.text
    keys = re.findall(r'name="request_key" value="([^"]+)"', page.text)
    assert len(set(keys)) == 5 and all(re.fullmatch(r"[A-Za-z0-9_-]{16,64}", k) for k in keys)
    # Everybody signed in may browse; only lenders see the fund forms.
    for name in ("bea", "ops"):
        other = clients[name].get("/loans/market")
        assert other.status_code == 200 and len(listed(other.text)) == 5
        assert 'name="amount_sat"' not in other.text


@pytest.mark.parametrize("params, expected", [
    ({"grade": ["A"]}, ["a"]),
    ({"grade": ["a", "C", "E"]}, ["e", "c", "a"]),
    ({"rate_min": "25"}, ["e", "d", "b"]),
    ({"rate_max": "18.5"}, ["c", "a"]),
    ({"rate_min": "18.5", "rate_max": "30"}, ["e", "c", "b"]),
    ({"term_min": "8"}, ["e", "d", "b"]),
    ({"term_max": "6"}, ["c", "a"]),
    ({"term_min": "6", "term_max": "10"}, ["e", "c", "b"]),
    ({"frequency": "weekly"}, ["e", "d", "b"]),
    ({"frequency": "monthly"}, ["c"]),
    ({"purpose": "business"}, ["e", "b"]),
    ({"left_min": "30000"}, ["e", "d", "c"]),  # b has 20,000 left, d 60,000
    ({"left_min": "60001"}, []),
    ({"grade": ["B", "D"], "frequency": "weekly", "rate_min": "30"}, ["d"]),
    ({"rate_min": "", "purpose": "", "grade": [""]}, ["e", "d", "c", "b", "a"]),  # an untouched form
])
def test_each_filter_narrows_the_list(clients: dict[str, TestClient], book: dict[str, int],
                                      params: dict[str, object], expected: list[str]) -> None:
    page = clients["lea"].get("/loans/market", params=params)  # type: ignore[arg-type]
    assert page.status_code == 200, page.text
    assert names(book, listed(page.text)) == expected
    assert f"{len(expected)} matching requests" in page.text


@pytest.mark.parametrize("params, expected", [
    ({"sort": "rate"}, ["d", "e", "b", "c", "a"]),
    ({"sort": "rate", "dir": "asc"}, ["a", "c", "b", "e", "d"]),
    ({"sort": "time_left"}, ["a", "c", "b", "e", "d"]),
    ({"sort": "time_left", "dir": "desc"}, ["d", "e", "b", "c", "a"]),
    ({"sort": "funded"}, ["b", "d", "e", "c", "a"]),  # 60 %, 25 %, then the unfunded newest first
    ({"sort": "newest", "dir": "asc"}, ["a", "b", "c", "d", "e"]),
])
def test_sort_orders(clients: dict[str, TestClient], book: dict[str, int], params: dict[str, str],
                     expected: list[str]) -> None:
    page = clients["lea"].get("/loans/market", params=params)
    assert page.status_code == 200, page.text
    assert names(book, listed(page.text)) == expected


def test_sort_links_keep_the_filters_and_flip_the_direction(clients: dict[str, TestClient],
                                                            book: dict[str, int]) -> None:
    page = clients["lea"].get("/loans/market?grade=B&grade=D&sort=rate").text
    assert 'href="/loans/market?grade=B&amp;grade=D&amp;sort=rate&amp;dir=asc"' in page
    assert 'href="/loans/market?grade=B&amp;grade=D&amp;sort=funded"' in page
    assert 'hx-get="/loans/market?grade=B&amp;grade=D&amp;sort=time_left"' in page


def test_paging(clients: dict[str, TestClient], book: dict[str, int]) -> None:
    lea = clients["lea"]
    seen: list[str] = []
    for number, expected in ((1, ["e", "d"]), (2, ["c", "b"]), (3, ["a"])):
        page = lea.get("/loans/market", params={"size": "2", "page": str(number)})
        assert page.status_code == 200
        found = names(book, listed(page.text))
        assert found == expected
        seen += found
        assert f"page {number} of 3" in page.text
        assert ('rel="next"' in page.text) == (number < 3) and ('rel="prev"' in page.text) == (number > 1)
    assert seen == ["e", "d", "c", "b", "a"]
    # The next link carries a keyset cursor (the last row's id when the newest come first).
    assert f'href="/loans/market?size=2&amp;page=2&amp;after={book["d"]}"' in lea.get("/loans/market?size=2").text
    beyond = lea.get("/loans/market", params={"size": "2", "page": "9"})
    assert beyond.status_code == 200 and listed(beyond.text) == [] and "No open request matches" in beyond.text
    # Filters stay on while paging.
    filtered = lea.get("/loans/market", params={"frequency": "weekly", "size": "2", "page": "2"})
    assert names(book, listed(filtered.text)) == ["b"]


@pytest.mark.parametrize("query, message", [
    ("grade=F", "A grade must be one of A, B, C, D or E."),
    ("rate_min=lots", "The lowest rate must be a number of percent"),
    ("rate_max=101", "The highest rate must be between 0 and 100 %"),
    ("rate_min=-1", "The lowest rate must be between 0 and 100 %"),
    ("rate_min=12.345", "at most two decimals"),
    ("rate_min=NaN", "The lowest rate must be a number of percent"),
    ("rate_min=30&rate_max=20", "The lowest rate is above the highest rate."),
    ("term_min=abc", "The fewest installments must be a whole number."),
    ("term_max=0", "The most installments must be between 1 and 10,000."),
    ("term_min=9&term_max=3", "The fewest installments is above the most installments."),
    ("frequency=hourly", "The frequency must be daily, weekly or monthly."),
    ("purpose=yacht", "The purpose must be one of: business"),
    ("left_min=1e9", "The amount left to fund must be a whole number."),
    ("left_min=0", "The amount left to fund must be between 1 and"),
    ("sort=cheapest", "Sort by rate, time_left, funded or newest."),
    ("dir=up", "The sort direction must be asc or desc."),
    ("page=0", "The page number must be between 1 and 10,000."),
    ("page=x", "The page number must be a whole number."),
    ("page=99999999999999999999", "The page number must be between 1 and 10,000."),
    ("size=500", "The page size must be between 1 and 50."),
    ("page=1&page=2", "Give page only once."),
    ("purpose=" + "x" * 40, "The value for purpose is too long."),
])
def test_bad_filter_values_are_a_422_page_with_the_message(clients: dict[str, TestClient], book: dict[str, int],
                                                           query: str, message: str) -> None:
    page = clients["lea"].get(f"/loans/market?{query}")
    assert page.status_code == 422, page.text
    assert message in page.text and 'role="alert"' in page.text
    assert "<html" in page.text and 'action="/loans/market"' in page.text  # the form is there to fix it
    assert listed(page.text) == []
    # Through htmx: the fragment carries the message with a 200 (htmx swaps only 2xx), still no list.
    fragment = clients["lea"].get(f"/loans/market?{query}", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and message in fragment.text and "<html" not in fragment.text


def test_htmx_gets_only_the_results_fragment(clients: dict[str, TestClient], book: dict[str, int]) -> None:
    lea = clients["lea"]
    fragment = lea.get("/loans/market", params={"grade": "B"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<form class=\"market-filter\"" not in fragment.text
    assert 'id="results"' not in fragment.text and "<table" in fragment.text
    assert names(book, listed(fragment.text)) == ["b"]
    assert "HX-Request" in fragment.headers.get("vary", "")
    # A history restore (back button with htmx's cache missed) gets the whole page.
    restore = lea.get("/loans/market", params={"grade": "B"},
                      headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text and 'id="results"' in restore.text


def test_a_lender_funds_a_note_from_the_list(clients: dict[str, TestClient], book: dict[str, int],
                                             database: Database) -> None:
    lea = clients["lea"]
    page = lea.get("/loans/market", params={"grade": "C"}).text
    key = re.search(r'name="request_key" value="([^"]+)"', page)
    assert key is not None
    response = lea.post(f"/loans/{book['c']}/fund", data={
        "csrf_token": csrf_token_in(page), "request_key": key.group(1), "amount_sat": "5000"},
        follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/loans/{book['c']}?done=funded"
    mine = database.read(lambda c: c.execute(select(notes.c.loan_id, notes.c.amount_msat)
                                             .where(notes.c.lender_id == uid(lea))).all())
    assert [(int(a), int(b)) for a, b in mine] == [(book["c"], 5_000_000)]
    # The same form sent twice is one note (the request key).
    lea.post(f"/loans/{book['c']}/fund", data={
        "csrf_token": csrf_token_in(page), "request_key": key.group(1), "amount_sat": "5000"})
    assert len(database.read(lambda c: c.execute(select(notes.c.id).where(notes.c.lender_id == uid(lea))).all())) == 1
    # Without the CSRF field it is refused.
    refused = lea.post(f"/loans/{book['c']}/fund", data={"amount_sat": "5000"}, follow_redirects=False)
    assert refused.status_code == 403


def test_the_spec_round_trips_through_its_query() -> None:
    spec = market.parse_market([("grade", "b"), ("grade", "D"), ("rate_min", "12.5"), ("term_max", "20"),
                                ("frequency", "weekly"), ("purpose", "health"), ("left_min", "1,000"),
                                ("sort", "funded"), ("dir", "asc"), ("page", "3"), ("size", "10"), ("other", "x")])
    assert spec.grades == ("B", "D") and spec.rate_min_bps == 1250 and spec.left_min_msat == 1_000_000
    assert market.parse_market(spec.params()) == spec
    assert market.parse_market([]) == market.MarketSpec()
    assert market.MarketSpec().query() == ""


# --- the portfolio ---------------------------------------------------------------------------------------------


def _started_loan(database: Database, settings: Settings, lenders: list[tuple[int, int]]) -> int:
    """A loan pledged by `lenders` [(id, msat)] and paid out to its borrower (the node is not involved)."""
    total = sum(amount for _, amount in lenders)
    n = next(_counter)
    borrower = create_user(database, settings, f"started{n}-{id(database)}@example.org", PASSWORD, "borrower")
    loan_id = loan_service.request_loan(database, settings, borrower,
                                        LoanTerms(total, 1800, 4, Frequency.WEEKLY, Method.ANNUITY),
                                        "farming", "Seeds and a water pump for the dry season.")
    for lender, amount in lenders:
        loan_service.pledge(database, settings, lender, loan_id, amount)
    hash_ = f"{loan_id:064x}"

    def start(c: Connection) -> None:
        payment_id = disbursements.hold(c, loan_id, borrower, hash_, "lnbcrt-test", 10_000)
        disbursements.settle(c, payment_id, loan_id, hash_, 0, None, today=loan_service.utc_today())

    database.run(start)
    return loan_id


def test_portfolio_figures_are_the_sums_of_the_notes(clients: dict[str, TestClient], database: Database,
                                                     settings: Settings, book: dict[str, int]) -> None:
    lea, leo = uid(clients["lea"]), uid(clients["leo"])
    active = _started_loan(database, settings, [(lea, 20_000_000), (leo, 10_000_000)])
    other = _started_loan(database, settings, [(lea, 12_000_000)])
    loan_service.pledge(database, settings, lea, book["a"], 4_000_000)  # a pledge, not yet lent
    # Earnings and a loss written onto the notes as the repayment and write-off code would.
    def earn(c: Connection) -> None:
        c.execute(update(notes).where(notes.c.loan_id == active, notes.c.lender_id == lea)
                  .values(income_msat=1_234_567, received_msat=6_000_000, principal_outstanding_msat=15_234_567))
        c.execute(update(notes).where(notes.c.loan_id == other, notes.c.lender_id == lea)
                  .values(status="written_off", loss_msat=7_000_000, income_msat=300_000,
                          principal_outstanding_msat=0))
        c.execute(update(notes).where(notes.c.loan_id == active, notes.c.lender_id == leo)
                  .values(income_msat=999_000))
    database.run(earn)

    page = clients["lea"].get("/portfolio")
    assert page.status_code == 200, page.text
    text = page.text

    def figure(element: str) -> str:
        found = re.search(rf'id="{element}">([^<]*)<', text)
        assert found is not None, element
        return found.group(1)

    rows = database.read(lambda c: c.execute(select(notes).where(notes.c.lender_id == lea,
                                                                 notes.c.status != "released")).all())
    income = sum(int(r.income_msat) for r in rows)
    losses = sum(int(r.loss_msat) for r in rows)
    outstanding = sum(int(r.principal_outstanding_msat) for r in rows if r.status == "active")
    lent = sum(int(r.amount_msat) for r in rows if r.status in ("active", "repaid", "written_off"))
    assert (income, losses, outstanding, lent) == (1_534_567, 7_000_000, 15_234_567, 32_000_000)
    balances = database.read(lambda c: ledger.user_balances(c, lea))
    assert figure("available") == sat_text(balances[AccountKind.USER_AVAILABLE])
    assert figure("reserved") == sat_text(balances[AccountKind.USER_RESERVED]) == "4,000 sat"
    assert figure("outstanding") == sat_text(outstanding)
    assert figure("earned") == sat_text(income)
    assert figure("losses") == sat_text(losses)
    expected = (Decimal(income - losses) * 100 / Decimal(lent)).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    assert figure("net-return") == f"{expected} %" == "-17.08 %"
    assert "Net return = (interest earned − losses) ÷ total lent" in text
    assert format_msat(lent) in text  # exact, in the "how this is computed" detail
    # Notes by state: counts and sums per state.
    by_state = dict(re.findall(r"<tr><td>([a-z ]+)</td><td class=\"num\">(\d+)</td>", text))
    assert by_state == {"pledged": "1", "active": "1", "repaid": "0", "written off": "1"}
    assert '<td class="num">1</td><td class="num">20,000 sat</td>' in text
    assert '<td class="num">1</td><td class="num">12,000 sat</td>' in text
    # Every note of hers is listed, and leo's income is not in her figures.
    assert text.count(f'href="/loans/{active}"') == 1 and f'href="/loans/{other}"' in text
    assert f'href="/loans/{book["a"]}"' in text and "999 sat" not in text


def test_an_empty_portfolio_says_so(clients: dict[str, TestClient]) -> None:
    page = clients["lea"].get("/portfolio")
    assert page.status_code == 200
    assert 'id="net-return">—<' in page.text and "No notes yet." in page.text
    assert 'id="available">200,000 sat<' in page.text


@pytest.mark.parametrize("path", ["/portfolio"])
def test_only_lenders_reach_the_portfolio(clients: dict[str, TestClient], path: str) -> None:
    assert clients["bea"].get(path).status_code == 403
    assert clients["ops"].get(path).status_code == 403


@pytest.mark.parametrize("path", ["/portfolio", "/statement", "/statement.csv"])
def test_signed_out_people_are_sent_to_sign_in(clients: dict[str, TestClient], path: str) -> None:
    response = clients["anon"].get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?next=")


# --- the statement -------------------------------------------------------------------------------------------------


def _lines_of(database: Database, user_id: int) -> list[tuple[int, int]]:
    """(entry id, raw amount) of every journal line on the user's accounts, computed straight from the tables."""
    def read(c: Connection) -> list[tuple[int, int]]:
        rows = c.execute(select(journal_lines.c.entry_id, journal_lines.c.amount_msat)
                         .join(accounts, accounts.c.id == journal_lines.c.account_id)
                         .where(accounts.c.user_id == user_id)
                         .order_by(journal_lines.c.entry_id.desc(), journal_lines.c.position.desc())).all()
        return [(int(e), int(a)) for e, a in rows]
    return database.read(read)


def test_the_statement_shows_exactly_the_users_own_lines(clients: dict[str, TestClient], database: Database,
                                                          settings: Settings, book: dict[str, int]) -> None:
    lea = uid(clients["lea"])
    loan_service.pledge(database, settings, lea, book["a"], 3_000_000)
    _deposit(database, lea, 1_500, "small top-up")
    mine = _lines_of(database, lea)
    assert len(mine) == 4  # deposit, pledge (two lines: available and reserved), top-up
    page = clients["lea"].get("/statement")
    assert page.status_code == 200
    text = page.text
    body = text.split("<tbody>")[1].split("</tbody>")[0]
    rows = re.findall(r"<tr><td>[^<]+</td><td class=\"num\">(\d+)</td>", body)
    assert [int(e) for e in rows] == [e for e, _ in mine]
    assert "leo-private-memo" not in text and "lea first deposit" in text and "small top-up" in text
    assert "+200,000 sat" in text and "-3,000 sat" in text and "+3,000 sat" in text and "+1.500 sat" in text
    assert "Deposit" in text and "Note pledged" in text and "available" in text and "reserved" in text
    assert "4 lines · page 1 of 1" in text
    leo_entries = {e for e, _ in _lines_of(database, uid(clients["leo"]))}
    assert not leo_entries & {e for e, _ in mine}
    # Leo's own statement never shows Lea's lines either.
    leo_page = clients["leo"].get("/statement").text
    assert "lea first deposit" not in leo_page and "leo-private-memo" in leo_page
    # A borrower (any signed-in user) has a statement too: their own, here empty.
    assert "No ledger lines yet." in clients["bea"].get("/statement").text


def test_statement_paging_and_bad_pages(clients: dict[str, TestClient], database: Database) -> None:
    lea = uid(clients["lea"])
    for n in range(statements.PAGE_SIZE + 2):
        _deposit(database, lea, 1000 + n, f"deposit number {n}")
    first = clients["lea"].get("/statement")
    assert "page 1 of 2" in first.text and 'href="/statement?page=2"' in first.text
    assert "deposit number 51" in first.text and "lea first deposit" not in first.text
    second = clients["lea"].get("/statement?page=2")
    assert second.status_code == 200 and "lea first deposit" in second.text and "deposit number 0" in second.text
    assert "deposit number 51" not in second.text
    for bad in ("0", "x", "-1", "9999999"):
        refused = clients["lea"].get(f"/statement?page={bad}")
        assert refused.status_code == 422 and "The page number must be a whole number" in refused.text


def test_the_csv_has_the_same_lines_with_a_header(clients: dict[str, TestClient], database: Database,
                                                  settings: Settings, book: dict[str, int]) -> None:
    lea = uid(clients["lea"])
    loan_service.pledge(database, settings, lea, book["b"], 2_000_000)
    response = clients["lea"].get("/statement.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="microlend-statement.csv"'
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == statements.CSV_HEADER
    body = table[1:]
    mine = _lines_of(database, lea)
    assert [int(row[1]) for row in body] == [e for e, _ in mine]
    # Amounts as the user sees them: the raw line negated on their credit-normal accounts.
    assert [int(row[5]) for row in body] == [-a for _, a in mine]
    assert body[-1][3:] == ["Deposit", "available", "200000000", "200000", "lea first deposit"]
    assert ["Note pledged", "available", "-2000000", "-2000"] in [row[3:7] for row in body]
    for row in body:
        assert datetime.fromisoformat(row[0].replace("Z", "+00:00")).tzinfo is not None
    assert "leo-private-memo" not in response.text


def test_csv_injection_is_neutralised(clients: dict[str, TestClient], database: Database) -> None:
    lea = uid(clients["lea"])
    evil = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+2", "-2+3", "@SUM(A1:A2)"]
    for memo in evil:
        _deposit(database, lea, 1000, memo)
    memos = database.read(lambda c: [m for (m,) in c.execute(select(journal_entries.c.memo))])
    assert evil[0] in memos  # stored as given
    table = list(csv.reader(io.StringIO(clients["lea"].get("/statement.csv").text)))
    cells = [row[7] for row in table[1:]]
    for memo in evil:
        assert "'" + memo in cells and memo not in cells
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in table for cell in (row[2], row[3], row[7]))
    page = clients["lea"].get("/statement").text
    assert "=HYPERLINK(&#34;http://evil.example&#34;" in page or "=HYPERLINK(&quot;" in page
    assert statements.safe_cell("=1") == "'=1" and statements.safe_cell("plain") == "plain"
    assert statements.safe_cell("\t=1") == "'\t=1"


# --- text ready for translation ---------------------------------------------------------------------------------


def test_i18n_catalog_and_extension() -> None:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    install_i18n(env)
    install_i18n(env, "de")  # no catalog for it yet: English, no error
    assert env.from_string('{{ _("Hello %(who)s", who="<b>") }}').render() == "Hello &lt;b&gt;"
    pot = (REPO / "locale" / "microlend.pot").read_text(encoding="utf-8")
    for text in ("Open loan requests", "Net return", "Download CSV", "Fund a note"):
        assert f'msgid "{text}"' in pot


def test_the_auto_invest_page_saves_rules_and_refuses_nonsense(settings: Settings, database: Database) -> None:
    with make_client(settings, database) as client:
        assert sign_up(client, "auto@example.org").status_code == 303
        page = client.get("/autoinvest")
        assert page.status_code == 200 and "as many loans as your rules allow, in equal notes" in page.text
        assert "No open request matches these rules right now" in page.text
        token = csrf_token(client, "/autoinvest")
        form = {"csrf_token": token, "enabled": "on", "budget_sat": "0", "note_sat": "1000",
                "max_per_loan_sat": "5000", "max_per_loan_percent": "5", "max_per_borrower_sat": "5000",
                "grades": ["A", "B"], "frequencies": ["weekly"], "purposes": ["business"], "max_term_days": "200",
                "min_rate_percent": "5", "max_expected_loss_percent": "2.5", "reinvest": "on"}
        saved = client.post("/autoinvest", data=form, follow_redirects=False)
        assert saved.status_code == 303 and saved.headers["location"] == "/autoinvest?done=saved"
        shown = client.get("/autoinvest?done=saved").text
        assert "Saved." in shown and 'value="2.5"' in shown
        refused = client.post("/autoinvest", data={**form, "budget_sat": "1²"})
        assert refused.status_code == 422 and "budget as a whole number of sat" in refused.text
        refused = client.post("/autoinvest", data={**form, "budget_sat": "5000"})
        assert refused.status_code == 422 and "Deposit more or lower the budget" in refused.text
