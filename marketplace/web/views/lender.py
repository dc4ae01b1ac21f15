"""Lender pages: the marketplace list (filter, sort, page, fund from the list), the portfolio and the statement.

The list's filter form is a plain GET form; htmx only enhances it by asking for
the results fragment (`HX-Request`) and pushing the URL, so every state of the
list is a link that works without JavaScript.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.terms import PURPOSES
from marketplace.domain.users import Role
from marketplace.domain.money import MSAT_PER_SAT
from marketplace.services import analytics, loan_views, statements
from marketplace.services.grading import expected_loss_msat
from marketplace.services import marketplace_list as market
from marketplace.services.lightning_calls import reading
from marketplace.services.market_cache import CachedPage
from marketplace.web.csrf import csrf_token_for
from marketplace.web.i18n import current_language, say
from marketplace.web.params import query_whole
from marketplace.web.rendering import render, word
from marketplace.web.sessions import current_user, require_role
from marketplace.web.state import analytics_memo_of, database_of, market_cache_of, settings_of, templates_of
from marketplace.web import charts, formatting
from marketplace.web.views.loans import ANYONE, FREQUENCY_WORDS, bps_percent, ppm_percent
from marketplace.domain.messages import N_

CSV_FILENAME = "microlend-statement.csv"
NOTE_STATES = ("pledged", "active", "repaid", "written_off")


def _is_fragment(request: Request) -> bool:
    """An htmx swap asks for the results only; a history restore (back button, no cache) needs the page."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


# --- the marketplace list ---------------------------------------------------------------------------------


async def market_page(request: Request) -> Response:
    """Anyone may browse the open requests; only a lender gets the fund forms."""
    user = await current_user(request)
    settings = settings_of(request)
    fragment = _is_fragment(request)
    pledged = request.query_params.get("pledged", "")
    context: dict[str, Any] = {
        "pledged": int(pledged) if pledged.isascii() and pledged.isdigit() and len(pledged) <= 18 else None,
        "pct": bps_percent, "ppm": ppm_percent, "expected_loss": expected_loss_msat,
        "frequency_words": FREQUENCY_WORDS, "purposes": PURPOSES, "grades": market.GRADES,
        "frequencies": market.FREQUENCIES, "note_min_sat": settings.note_min_sat,
        "is_lender": user is not None and user.role is Role.LENDER, "request_key": secrets.token_urlsafe(18),
    }
    try:
        # Only the names the list knows, each read by name (the rest of the query string is ignored).
        spec = market.parse_market((name, value) for name in market.KNOWN
                                   for value in request.query_params.getlist(name))
    except InvalidInput as refusal:
        chosen = [g.upper() for g in request.query_params.getlist("grade")]
        echo = {name: request.query_params.get(name, "")[:market.VALUE_LENGTH_MAX] for name in market.KNOWN}
        context.update({"error": say(refusal), "found": None, "spec": market.MarketSpec(), "echo": echo,
                        "chosen": chosen, "results_html": None})
        # htmx swaps only 2xx answers: the fragment carries the message with a 200; the page says 422.
        if fragment:
            return await render(request, "lender/_market_results.html", context, headers={"Vary": "HX-Request"})
        return await render(request, "lender/market.html", context, status=refusal.status,
                            headers={"Vary": "HX-Request"})
    cache = market_cache_of(request)
    cached = await reading(database_of(request), lambda c: cache.page(c, spec))
    headers = {"Vary": "HX-Request, Cookie", "ETag": market_etag(request, cached.tag, spec, fragment),
               # The browser may keep the page but must ask each time; a 304 costs no query and no render.
               "Cache-Control": "private, no-cache"}
    if headers["ETag"] in _if_none_match(request):
        return Response(status_code=304, headers=headers)
    found = cached.page
    context.update({"error": None, "found": found, "spec": spec, "echo": spec.echo(), "chosen": list(spec.grades)})
    results = results_html(request, cached, {**context, "user": user})
    if fragment:
        return HTMLResponse(results, headers=headers)
    return await render(request, "lender/market.html", {**context, "results_html": results}, headers=headers)


# Stand-ins for the per-visitor bits of the cached rows: random per process, so no page text can contain them.
_CSRF_SLOT = "csrf" + secrets.token_hex(16)
_KEY_SLOT = "key" + secrets.token_hex(16)


def results_html(request: Request, cached: CachedPage, context: dict[str, Any]) -> Markup:
    """The list's rows, rendered once per market version, language and view (with or without the fund forms),
    then given this visitor's CSRF token and request key."""
    key = (current_language(), "lender" if context["is_lender"] else "reader")
    html = cached.rendered.get(key)
    if html is None:
        template = templates_of(request).env.get_template("lender/_market_results.html")
        html = template.render({**context, "csrf_token": _CSRF_SLOT, "request_key": _KEY_SLOT})
        cached.rendered[key] = html  # a race only renders the same text twice
    token, _ = csrf_token_for(request, context["user"])
    return Markup(html.replace(_CSRF_SLOT, str(escape(token))).replace(_KEY_SLOT, str(escape(context["request_key"]))))


def market_etag(request: Request, tag: str, spec: market.MarketSpec, fragment: bool) -> str:
    """A weak validator: the market's version and next deadline, the spec, the page or the fragment, the
    visitor's cookies (their session, so their CSRF token and role: a page is never another person's) and the
    language the page is in (a stored choice or Accept-Language can change it with the same cookies)."""
    parts = "\n".join((tag, urlencode(spec.params()), "fragment" if fragment else "page",
                       request.headers.get("cookie", ""), current_language()))
    return 'W/"' + hashlib.sha256(parts.encode()).hexdigest()[:32] + '"'


def _if_none_match(request: Request) -> set[str]:
    raw = request.headers.get("if-none-match", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


# --- the portfolio ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateTotal:
    state: str
    count: int
    amount_msat: int


@dataclass(frozen=True)
class Returns:
    lent_msat: int  # principal of every note that was paid out to a borrower (active, repaid, written off)
    net_msat: int  # interest and fees earned minus losses
    percent: str | None  # net / lent, two decimals; None before anything is lent


def returns_of(portfolio: loan_views.Portfolio) -> Returns:
    lent = portfolio.lent_msat
    net = portfolio.interest_earned_msat - portfolio.losses_msat
    if lent <= 0:
        return Returns(lent, net, None)
    percent = (Decimal(net) * 100 / Decimal(lent)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return Returns(lent, net, f"{percent:.2f}")


def by_state(portfolio: loan_views.Portfolio) -> tuple[StateTotal, ...]:
    counts = {state: 0 for state in NOTE_STATES}
    sums = {state: 0 for state in NOTE_STATES}
    for status, count, amount in portfolio.by_state:
        counts[status] = count
        sums[status] = amount
    return tuple(StateTotal(state, counts[state], sums[state]) for state in counts)


NOTES_PAGE_MAX = 999_999


def analytics_charts(found: analytics.LenderAnalytics) -> dict[str, Markup]:
    """The portfolio page's charts: server-side SVG, no script, every word in the reader's language."""
    r = found.risk
    result: dict[str, Markup] = {}
    if r.holdings:
        result["losses"] = Markup(charts.loss_histogram(
            [e / MSAT_PER_SAT for e in r.histogram_edges_msat], list(r.histogram_probabilities),
            r.var99_msat / MSAT_PER_SAT, title=say(N_("How much you could lose, and how likely")),
            x_label=say(N_("loss")), y_label=say(N_("chance")), var_label=say(N_("1 in 100:"))))
        result["grades"] = Markup(charts.bar_chart([g for g, _ in r.by_grade],
                                                   [v / MSAT_PER_SAT for _, v in r.by_grade], title=say(N_("By grade"))))
        result["purposes"] = Markup(charts.bar_chart([str(word(p)) for p, _ in r.by_purpose],
                                                     [v / MSAT_PER_SAT for _, v in r.by_purpose], title=say(N_("By purpose"))))
    flows = found.returns.flows
    if flows:
        first = flows[0][0]
        result["flows"] = Markup(charts.cashflow_timeline(
            [(day - first).days for day, _ in flows], [a / MSAT_PER_SAT for _, a in flows],
            (formatting.day(first), formatting.day(flows[-1][0])), title=say(N_("Lent (down) and repaid (up)"))))
    s = found.spread
    result["spread"] = Markup(charts.line_chart(list(s.counts), [p / 1_000_000 for p in s.prob_losing_ppm],
                                                title=say(N_("Chance of losing money by number of notes")),
                                                x_label=say(N_("number of notes")), y_label=say(N_("chance")),
                                                log_x=True))
    return result


async def portfolio_page(request: Request) -> Response:
    user = await require_role(request, Role.LENDER)
    today = datetime.now(timezone.utc).date()

    page = query_whole(request, "page", default=1, minimum=1, maximum=NOTES_PAGE_MAX,
                       sentence=N_("The page number must be a whole number from 1 to %(most)s.",
                                   most=format(NOTES_PAGE_MAX, ",")))

    memo = analytics_memo_of(request)

    def read(conn: Connection) -> tuple[loan_views.Portfolio, analytics.LenderAnalytics]:
        return (loan_views.lender_portfolio(conn, user.id, page),
                analytics.lender_analytics(conn, user.id, today, memo))

    portfolio, found = await reading(database_of(request), read)
    return await render(request, "lender/portfolio.html", {
        "portfolio": portfolio, "returns": returns_of(portfolio), "states": by_state(portfolio),
        "analytics": found, "charts": analytics_charts(found), "ppm": ppm_percent})


# --- the statement ----------------------------------------------------------------------------------------


async def statement_page(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    page = statements.parse_page(request.query_params.get("page"))
    found = await reading(database_of(request), lambda c: statements.statement_page(c, user.id, page))
    return await render(request, "lender/statement.html", {"found": found})


async def statement_csv(request: Request) -> Response:
    user = await require_role(request, *ANYONE)
    lines = await reading(database_of(request), lambda c: statements.all_lines(c, user.id))
    return StreamingResponse(
        statements.csv_rows(lines), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{CSV_FILENAME}"', "Cache-Control": "no-store"})


def lender_routes() -> list[BaseRoute]:
    return [
        Route("/loans/market", market_page, methods=["GET"], name="loans_market"),
        Route("/portfolio", portfolio_page, methods=["GET"], name="portfolio"),
        Route("/statement", statement_page, methods=["GET"], name="statement"),
        Route("/statement.csv", statement_csv, methods=["GET"], name="statement_csv"),
    ]
