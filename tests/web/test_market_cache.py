"""The market list's cache, ETags and keyset paging: never a stale list, a 304 only for the same page.

Real database (both), real HTTP through the ASGI app; the changes go through the services or straight
to the table (as the daily job or any other write path would), never through the cache.
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Select, event, select, update

from marketplace.db.engine import Database
from marketplace.db.tables import loans, notes
from marketplace.services import loans as loan_service
from marketplace.services import marketplace_list as market
from marketplace.services.market_cache import MarketCache, market_version
from marketplace.settings import Settings
from tests.web.support import TestClient
from tests.web.test_lender_pages import book, clients, listed, make_loan, names, uid  # noqa: F401 (fixtures)

_NEXT = re.compile(r'<a href="(/loans/market[^"]*)"[^>]*rel="next"')


def _funded_text(page: str, loan_id: int) -> str:
    row = page.split(f'href="/loans/{loan_id}"', 1)[1].split("</tr>", 1)[0]
    found = re.search(r'value="(\d+)"', row)
    assert found is not None
    return found.group(1)


def test_a_pledge_shows_in_the_list_at_once(clients: dict[str, TestClient], book: dict[str, int],
                                            database: Database, settings: Settings) -> None:
    lea = clients["lea"]
    before = lea.get("/loans/market").text
    assert _funded_text(before, book["e"]) == "0"
    loan_service.pledge(database, settings, uid(clients["leo"]), book["e"], 5_000_000)
    assert _funded_text(lea.get("/loans/market").text, book["e"]) == "5000000"


def test_new_expired_and_cancelled_requests_show_at_once(clients: dict[str, TestClient], book: dict[str, int],
                                                         database: Database, settings: Settings) -> None:
    lea = clients["lea"]
    assert names(book, listed(lea.get("/loans/market").text)) == ["e", "d", "c", "b", "a"]
    fresh = make_loan(database, settings)
    assert listed(lea.get("/loans/market").text)[0] == fresh
    # Whatever writes the status (the daily job's expiry, a cancel), the version moves with it.
    database.run(lambda c: c.execute(update(loans).where(loans.c.id == book["d"]).values(status="expired")))
    assert book["d"] not in listed(lea.get("/loans/market").text)
    database.run(lambda c: c.execute(update(loans).where(loans.c.id == fresh).values(status="lapsed")))
    assert listed(lea.get("/loans/market").text) == [book[n] for n in ("e", "c", "b", "a")]


def test_only_changes_to_open_requests_move_the_version(book: dict[str, int], database: Database) -> None:
    before = database.read(market_version)
    # A loan that is not taking pledges (the expired one) changing: the list cannot have changed.
    database.run(lambda c: c.execute(update(loans).where(loans.c.id == book["closed"]).values(pd_ppm=1)))
    assert database.read(market_version) == before
    database.run(lambda c: c.execute(update(loans).where(loans.c.id == book["a"]).values(pd_ppm=1)))
    assert database.read(market_version) > before


def test_a_deadline_passing_drops_the_request_with_no_write(book: dict[str, int], database: Database) -> None:
    cache = MarketCache()
    spec = market.MarketSpec()
    now = datetime.now(timezone.utc)
    first = database.read(lambda c: cache.page(c, spec, now))
    assert book["a"] in [r.loan.id for r in first.page.rows]
    again = database.read(lambda c: cache.page(c, spec, now + timedelta(hours=1)))
    assert again is first and cache.hits == 1  # nothing changed: the same page, no query
    later = database.read(lambda c: cache.page(c, spec, now + timedelta(days=1, minutes=1)))  # a's deadline
    assert book["a"] not in [r.loan.id for r in later.page.rows] and later.page.total == first.page.total - 1


def test_etag_gives_304_until_the_market_changes(clients: dict[str, TestClient], book: dict[str, int],
                                                 database: Database, settings: Settings) -> None:
    lea, leo = clients["lea"], clients["leo"]
    first = lea.get("/loans/market?sort=rate")
    tag = first.headers["etag"]
    assert tag.startswith('W/"') and first.headers["cache-control"] == "private, no-cache"
    same = lea.get("/loans/market?sort=rate", headers={"If-None-Match": tag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
    # Another filter, the fragment, or another person: another validator.
    assert lea.get("/loans/market?sort=funded", headers={"If-None-Match": tag}).status_code == 200
    assert lea.get("/loans/market?sort=rate", headers={"If-None-Match": tag,
                                                        "HX-Request": "true"}).status_code == 200
    assert leo.get("/loans/market?sort=rate", headers={"If-None-Match": tag}).status_code == 200
    # The same page in another language (the browser's, or a stored choice) with the same cookies: not a 304.
    spanish = lea.get("/loans/market?sort=rate", headers={"If-None-Match": tag, "Accept-Language": "es"})
    assert spanish.status_code == 200 and spanish.headers["etag"] != tag
    assert spanish.headers["content-language"] == "es"
    loan_service.pledge(database, settings, uid(leo), book["a"], 2_000_000)
    changed = lea.get("/loans/market?sort=rate", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert _funded_text(changed.text, book["a"]) == "2000000"


def _walk(client: TestClient, start: str) -> tuple[list[int], list[str]]:
    """Every row by following the next links from `start`; and the links followed."""
    seen: list[int] = []
    links: list[str] = []
    url: str | None = start
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200, page.text
        seen += listed(page.text)
        found = _NEXT.search(page.text)
        url = html.unescape(found.group(1)) if found else None
        if url is not None:
            links.append(url)
    return seen, links


@pytest.mark.parametrize("sort", sorted(market.SORTS))
@pytest.mark.parametrize("direction", market.DIRECTIONS)
def test_keyset_pages_walk_the_same_rows_as_one_long_page(clients: dict[str, TestClient], book: dict[str, int],
                                                          database: Database, settings: Settings, sort: str,
                                                          direction: str) -> None:
    # Ties on every sort key, so the id has to break them the same way on both sides of a page edge.
    for _ in range(3):
        make_loan(database, settings, rate_bps=2500, deadline_in=timedelta(days=5))
    lea = clients["lea"]
    whole = listed(lea.get(f"/loans/market?sort={sort}&dir={direction}&size=50").text)
    assert len(whole) == 8
    walked, links = _walk(lea, f"/loans/market?sort={sort}&dir={direction}&size=3")
    assert walked == whole
    assert links and all("after=" in link for link in links)


@pytest.mark.parametrize("after", ["x", "12", "abc_12", "_0", "1_", "9" * 49, "2.5_3", "-1_4", "25_\u00b2", "\u0661_2"])
def test_a_bad_cursor_is_refused_with_a_message(clients: dict[str, TestClient], book: dict[str, int],
                                                after: str) -> None:
    answer = clients["lea"].get("/loans/market", params={"sort": "rate", "page": "2", "after": after})
    assert answer.status_code == 422
    assert "This page link is not one the list made" in answer.text


def test_a_cursor_on_the_first_page_is_refused(clients: dict[str, TestClient], book: dict[str, int]) -> None:
    answer = clients["lea"].get("/loans/market", params={"after": str(book["a"])})
    assert answer.status_code == 422 and "not one the list made" in answer.text


def _plan(conn: Connection, query: Select[Any]) -> str:
    """The plan of `query` with its parameters, in the driver's own parameter style."""
    compiled = query.compile(conn, compile_kwargs={"render_postcompile": True})
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a test-sized table: can the index serve?
        rows = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(compiled), dict(compiled.params))]
    else:
        positions = compiled.positiontup or []
        rows = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                                    tuple(compiled.params[name] for name in positions))]
    return "\n".join(str(r) for r in rows)


@pytest.mark.parametrize("sort, index", [("newest", "ix_loans_market_newest"), ("rate", "ix_loans_market_rate"),
                                         ("time_left", "ix_loans_market_deadline"),
                                         ("funded", "ix_loans_market_funded")])
def test_each_sort_reads_its_index_in_order(book: dict[str, int], database: Database, sort: str,
                                            index: str) -> None:
    spec = market.MarketSpec(sort=sort, direction=market.SORTS[sort])
    def explain(conn: Connection) -> str:
        where = market._conditions(spec, datetime.now(timezone.utc), sqlite=conn.dialect.name == "sqlite")
        return _plan(conn, select(*market.LOAN_COLUMNS).where(*where).order_by(*market._order(spec)).limit(10))

    plan = database.read(explain)
    assert index in plan, plan
    # No sort of the whole list: at most the ties of one key are put in id order (time_left: key up, id down).
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    assert not any(line.strip().lstrip("->").strip().startswith("Sort ") for line in plan.splitlines()), plan


def _statements(database: Database, client: TestClient, path: str) -> int:
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", note)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(database.engine, "before_cursor_execute", note)
    return len(seen)


@pytest.mark.parametrize("path", ["/portfolio", "/statement"])
def test_pages_ask_the_database_the_same_number_of_times_for_few_or_many_notes(
        clients: dict[str, TestClient], database: Database, settings: Settings, path: str) -> None:
    """No N+1: a lender with 12 notes costs the same number of statements as one with 2."""
    lea, leo = clients["lea"], clients["leo"]
    loans_made = [make_loan(database, settings, amount_sat=20_000) for _ in range(12)]
    for loan_id in loans_made[:2]:
        loan_service.pledge(database, settings, uid(lea), loan_id, 1_000_000)
    for loan_id in loans_made:
        loan_service.pledge(database, settings, uid(leo), loan_id, 1_000_000)
    few, many = _statements(database, lea, path), _statements(database, leo, path)
    assert few == many, (few, many)


_ROW_FORM = re.compile(r'<form method="post" action="/loans/(\d+)/fund" class="fund-row">\s*'
                       r'<input type="hidden" name="csrf_token" value="([^"]*)">\s*'
                       r'<input type="hidden" name="request_key" value="([^"]*)">')


def test_the_rows_rendered_once_carry_each_visitors_own_form_keys(
        clients: dict[str, TestClient], book: dict[str, int], database: Database) -> None:
    """The rows' HTML is kept per market version, but no visitor's token or request key is ever another's."""
    lea, leo = clients["lea"], clients["leo"]

    def held() -> list[tuple[int, int]]:
        return database.read(lambda c: sorted((int(a), int(b)) for a, b in c.execute(
            select(notes.c.lender_id, notes.c.loan_id))))

    before = held()
    forms = {name: _ROW_FORM.findall(client.get("/loans/market").text) for name, client in (("lea", lea),
                                                                                            ("leo", leo))}
    assert {int(loan) for loan, _, _ in forms["lea"]} == {book[n] for n in "abcde"}
    lea_keys = {key for _, _, key in forms["lea"]}
    assert lea_keys.isdisjoint(key for _, _, key in forms["leo"])
    assert len(lea_keys) == len(forms["lea"])  # one request key a row
    # Each lender's rows fund with their own token; the other's token is refused.
    loan, token, key = next(f for f in forms["leo"] if int(f[0]) == book["c"])
    assert leo.post(f"/loans/{loan}/fund", data={"csrf_token": token, "request_key": key, "amount_sat": "2000"},
                    follow_redirects=False).status_code == 303
    _, lea_token, lea_key = next(f for f in forms["lea"] if int(f[0]) == book["b"])
    assert leo.post(f"/loans/{book['b']}/fund", data={"csrf_token": lea_token, "request_key": lea_key,
                                                        "amount_sat": "2000"}, follow_redirects=False).status_code == 403
    assert lea.post(f"/loans/{book['b']}/fund", data={"csrf_token": lea_token, "request_key": lea_key,
                                                        "amount_sat": "2000"}, follow_redirects=False).status_code == 303
    assert held() == sorted(before + [(uid(leo), book["c"]), (uid(lea), book["b"])])


def test_the_kept_rows_follow_the_readers_language_and_role(clients: dict[str, TestClient],
                                                           book: dict[str, int]) -> None:
    lea, bea = clients["lea"], clients["bea"]
    english = lea.get("/loans/market").text
    spanish = lea.get("/loans/market?lang=es").text
    assert ">Fund</button>" in english and ">Financiar</button>" in spanish
    assert ">Fund</button>" in lea.get("/loans/market?lang=en").text  # the English rows were not replaced
    # A borrower reading the same page right after a lender sees no fund form, and a fragment is the rows alone.
    borrowed = bea.get("/loans/market", headers={"HX-Request": "true"})
    assert borrowed.status_code == 200 and "<html" not in borrowed.text
    assert f'href="/loans/{book["a"]}"' in borrowed.text and "fund-row" not in borrowed.text
