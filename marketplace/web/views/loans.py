"""Loan pages: request, fund, disburse, repay, portfolio and the operator's risk report.

Thin handlers: parse the form, call one service, render. Every refusal
re-renders the page it came from with the message and the refusal's status.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import date
from typing import Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from marketplace.db import loans as loan_rows
from marketplace.db.outgoing import OutgoingRow
from marketplace.domain.errors import InvalidInput, NotFound, Refusal
from marketplace.domain.loans.allocation import __doc__ as ALLOCATION_RULES
from marketplace.domain.loans.limits import check_request, max_count_for
from marketplace.domain.loans.schedules import Frequency, Method, Prepayment
from marketplace.domain.loans.sharing import __doc__ as SHARING_RULES
from marketplace.domain.loans.terms import PURPOSES, STORY_MAX, LoanTerms, parse_terms
from marketplace.domain.money import MSAT_PER_SAT
from marketplace.domain.users import Role
from marketplace.services import accounts, analytics, deposits, loan_views
from marketplace.services import loans as loan_service
from marketplace.services import offers as offer_service
from marketplace.services.lightning_calls import reading
from marketplace.settings import Settings
from marketplace.web import charts, formatting, live
from marketplace.web.errors import retry_after_headers
from marketplace.web.forms import optional_sat_msat_amount, parse_form, sat_amount, text_field
from marketplace.web.lightning import lightning_of
from marketplace.web.params import path_id, query_whole
from marketplace.web.qr import invoice_qr_svg
from marketplace.web.rendering import render
from marketplace.web.security import client_address
from marketplace.web.sessions import current_user, require_role
from marketplace.web.state import database_of, settings_of
from marketplace.domain.messages import Message, N_
from marketplace.web import rules_text
from marketplace.web.i18n import say

BOLT11_FIELD_MAX = 4096
OPEN_PAGE_MAX = 999_999
TERM_FIELDS = ("amount_sat", "rate", "count", "frequency", "method", "prepayment")
REQUEST_FIELDS = (*TERM_FIELDS, "purpose", "story")
_REQUEST_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ANYONE = (Role.LENDER, Role.BORROWER, Role.OPERATOR)
FREQUENCY_WORDS = {"daily": N_("days"), "weekly": N_("weeks"), "monthly": N_("months")}
METHOD_WORDS = {Method.ANNUITY.value: N_("Equal installments"), Method.EQUAL_PRINCIPAL.value: N_("Equal principal")}
PREPAYMENT_WORDS = {
    Prepayment.REDUCE_TERM.value: N_("Shorten the loan (the installments stay the same)"),
    Prepayment.REDUCE_INSTALLMENT.value: N_("Lower the installments (the end date stays the same)"),
}


def _id_param(request: Request, name: str, what: str) -> int:
    return path_id(request, name, what)


def allocation_steps(text: str) -> list[str]:
    """The numbered rules of the allocation module's docstring, one string per rule."""
    steps: list[str] = []
    numbered = re.compile(r"^(\d+)\.\s+(.*)$")
    for line in text.splitlines():
        found = numbered.match(line.strip())
        if found:
            steps.append(found.group(2))
        elif steps and line.strip() and line.startswith(" "):
            steps[-1] += " " + line.strip()
        elif not line.strip() and steps:
            break
    return steps


def _rules(settings: Settings) -> dict[str, Any]:
    """What the loan pages show about allocation, fees and delinquency: the settings' own numbers."""
    return {
        # The docstrings' rules as marked messages (same English, checked by a test), so they translate.
        "allocation_steps": rules_text.ALLOCATION_STEPS,
        "sharing_steps": rules_text.SHARING_STEPS,
        "disbursement_days": settings.disbursement_days,
        "service_fee_bps": settings.service_fee_bps,
        "grace_days": settings.grace_days,
        "default_after_days": settings.default_after_days,
        "write_off_after_days": settings.write_off_after_days,
        "late_fee_bps": settings.late_fee_bps,
        "late_fee_flat_msat": settings.late_fee_flat_msat,
        "note_min_sat": settings.note_min_sat,
        "funding_days": settings.funding_days,
    }


def ppm_percent(ppm: int) -> str:
    """12_345 ppm -> '1.23 %' (two decimals) in the reader's number format."""
    return formatting.percent_ppm(ppm)


def bps_percent(bps: int) -> str:
    """1850 -> '18.5 %', 100 -> '1 %' in the reader's number format."""
    return formatting.percent_bps(bps)


def _common(settings: Settings) -> dict[str, Any]:
    return {"rules": _rules(settings), "pct": bps_percent, "ppm": ppm_percent, "frequency_words": FREQUENCY_WORDS,
            "method_words": METHOD_WORDS, "prepayment_words": PREPAYMENT_WORDS, "msat_per_sat": MSAT_PER_SAT}


# --- borrower: a new request, with its live preview -------------------------------------------------------


def _term_echo(form: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    echo: dict[str, str] = {}
    for name in fields:
        limit = STORY_MAX + 100 if name == "story" else 64
        value = form.get(name)
        echo[name] = value[:limit] if isinstance(value, str) else ""
    return echo


async def _preview_context(request: Request, borrower_id: int, echo: Mapping[str, str]) -> dict[str, Any]:
    """The preview fragment's context: the full price, or the reason there is none yet."""
    settings = settings_of(request)
    if not any(echo.get(name, "").strip() for name in ("amount_sat", "rate", "count")):
        return {"preview": None, "preview_error": None}
    try:
        terms = parse_terms(echo)
        await _check_limits(request, settings, borrower_id, terms)
        shown = loan_service.preview(settings, terms)
        guidance = await reading(database_of(request), lambda c: loan_service.price_guidance_for(
            c, settings, borrower_id, terms))
    except Refusal as refusal:
        return {"preview": None, "preview_error": say(refusal)}
    return {"preview": shown, "preview_error": None, "guidance": guidance}


async def _check_limits(request: Request, settings: Settings, borrower_id: int, terms: LoanTerms) -> None:
    record = await reading(database_of(request),
                           lambda c: loan_rows.borrower_record(c, borrower_id, settings.grace_days))
    check_request(terms.amount_msat, terms.annual_rate_bps, terms.count, terms.frequency, record,
                  loan_service.limits_of(settings))


async def _request_form(request: Request, borrower_id: int, echo: dict[str, str],
                        refusal: Refusal | None = None) -> Response:
    settings = settings_of(request)
    limits = loan_service.limits_of(settings)
    summary = await reading(database_of(request), lambda c: loan_views.borrower_summary(
        c, settings, borrower_id, loan_service.utc_today()))
    context = {
        **_common(settings), **await _preview_context(request, borrower_id, echo),
        "echo": echo, "error": say(refusal) if refusal else None, "purposes": PURPOSES,
        "story_max": STORY_MAX, "summary": summary, "limits": limits,
        "max_counts": {f.value: max_count_for(f, limits) for f in Frequency},
    }
    return await render(request, "loans/new.html", context, status=refusal.status if refusal else 200)


async def new_request_page(request: Request) -> Response:
    user = await require_role(request, Role.BORROWER)
    defaults = {"amount_sat": "", "rate": "", "count": "", "frequency": "weekly", "method": "annuity",
                "prepayment": "reduce_term", "purpose": "", "story": ""}
    return await _request_form(request, user.id, defaults)


async def preview_fragment(request: Request) -> Response:
    """GET /loans/preview: htmx asks for this as the borrower types; always 200 (htmx swaps only 2xx)."""
    user = await require_role(request, Role.BORROWER)
    echo = _term_echo(request.query_params, TERM_FIELDS)
    context = {**_common(settings_of(request)), **await _preview_context(request, user.id, echo)}
    return await render(request, "loans/_preview.html", context)


async def create_request(request: Request) -> Response:
    user = await require_role(request, Role.BORROWER)
    form = await parse_form(request)
    echo = _term_echo(form, REQUEST_FIELDS)
    try:
        for name in REQUEST_FIELDS:
            text_field(form, name, length_max=STORY_MAX + 100 if name == "story" else 64, label=name)
        terms = parse_terms(echo)
        loan_id = await run_in_threadpool(lambda: loan_service.request_loan(
            database_of(request), settings_of(request), user.id, terms, echo["purpose"], echo["story"]))
    except Refusal as refusal:
        return await _request_form(request, user.id, echo, refusal)
    return RedirectResponse(f"/loans/{loan_id}", status_code=303)


# --- the loan page ----------------------------------------------------------------------------------------


async def _loan_page(request: Request, user_id: int | None, loan_id: int, *, refusal: Refusal | None = None,
                     echo: Mapping[str, str] | None = None, disbursed: OutgoingRow | None = None,
                     notice: Message | None = None) -> Response:
    settings = settings_of(request)
    today = loan_service.utc_today()
    # A visitor (no user) sees what everyone sees: a pseudonym, no notes marked as theirs.
    view = await reading(database_of(request), lambda c: loan_views.loan_view(c, loan_id, user_id or 0, today))
    runtime = lightning_of(request)
    offer = None
    viewer = await current_user(request)
    if view.loan.status in ("active", "written_off") and (
            view.loan.borrower_id == user_id or (viewer is not None and viewer.role == Role.OPERATOR)):
        # Beside the repayment card: the loan's BOLT12 offer (made by the node on first view).
        offer = await offer_service.loan_offer(database_of(request), runtime.port, loan_id)
    context = {
        **_common(settings), "view": view, "loan": view.loan, "error": say(refusal) if refusal else None,
        "offer": offer,
        "echo": dict(echo or {}), "disbursed": disbursed, "notice": notice, "today": today,
        "request_key": secrets.token_urlsafe(18), "demo_hint": runtime.demo_wallet is not None,
        "balances": await _balances(request, user_id) if user_id is not None else None,
    }
    return await render(request, "loans/loan.html", context, status=refusal.status if refusal else 200,
                        headers=retry_after_headers(refusal))


async def _balances(request: Request, user_id: int) -> accounts.Balances:
    return await run_in_threadpool(lambda: accounts.balances_of(database_of(request), user_id))


async def loan_page(request: Request) -> Response:
    """Anyone, signed in or not, may read a loan (pseudonymous: no borrower's or lender's name)."""
    user = await current_user(request)
    notice = {"funded": N_("Your note is pledged. Thank you."),
              "withdrawn": N_("Your pledge was withdrawn; the money is back in your available balance."),
              "requested": N_("Your request is open for funding.")}.get(
        request.query_params.get("done", ""))
    return await _loan_page(request, user.id if user else None, _id_param(request, "loan_id", "loan"),
                            notice=notice)


async def fund(request: Request) -> Response:
    user = await require_role(request, Role.LENDER)
    loan_id = _id_param(request, "loan_id", "loan")
    form = await parse_form(request)
    raw = ""
    try:
        raw = text_field(form, "amount_sat", length_max=32, label=N_("amount")).strip()
        key = text_field(form, "request_key", length_max=64, label=N_("form key")).strip()
        amount_msat = sat_amount(raw)
        request_key = key if _REQUEST_KEY.match(key) else None
        await run_in_threadpool(lambda: loan_service.pledge(database_of(request), settings_of(request), user.id, loan_id,
                                                     amount_msat, request_key))
    except Refusal as refusal:
        return await _loan_page(request, user.id, loan_id, refusal=refusal, echo={"amount_sat": raw})
    if form.get("back") == "market":  # funded from the list: back to it, to fund the next one
        return RedirectResponse(f"/loans/market?pledged={loan_id}", status_code=303)
    return RedirectResponse(f"/loans/{loan_id}?done=funded", status_code=303)


async def withdraw_note(request: Request) -> Response:
    user = await require_role(request, Role.LENDER)
    note_id = _id_param(request, "note_id", "note")
    note = await reading(database_of(request), lambda c: loan_rows.get_note(c, note_id))
    if note.lender_id != user.id:
        raise NotFound(N_("There is no such note."))
    try:
        await run_in_threadpool(lambda: loan_service.withdraw_pledge(database_of(request), user.id, note_id))
    except Refusal as refusal:
        return await _loan_page(request, user.id, note.loan_id, refusal=refusal)
    return RedirectResponse(f"/loans/{note.loan_id}?done=withdrawn", status_code=303)


async def disburse(request: Request) -> Response:
    user = await require_role(request, Role.BORROWER)
    loan_id = _id_param(request, "loan_id", "loan")
    form = await parse_form(request)
    bolt11 = ""
    try:
        bolt11 = text_field(form, "bolt11", length_max=BOLT11_FIELD_MAX, label=N_("invoice")).strip()
        if not bolt11:
            raise InvalidInput(N_("Paste a Lightning invoice (BOLT11) for exactly the loan amount."))
        runtime = lightning_of(request)
        result = await loan_service.disburse(database_of(request), runtime.port, runtime.facts,
                                             settings_of(request), user.id, loan_id, bolt11)
    except Refusal as refusal:
        return await _loan_page(request, user.id, loan_id, refusal=refusal, echo={"bolt11": bolt11})
    return await _loan_page(request, user.id, loan_id, disbursed=result,
                            echo={"bolt11": bolt11} if result.status == "failed" else {})


async def repay(request: Request) -> Response:
    user = await require_role(request, Role.BORROWER)
    loan_id = _id_param(request, "loan_id", "loan")
    form = await parse_form(request)
    raw = ""
    try:
        raw = text_field(form, "amount_sat", length_max=32, label=N_("amount")).strip()
        amount_msat = optional_sat_msat_amount(raw)
        runtime = lightning_of(request)
        row = await loan_service.repayment_invoice(database_of(request), runtime.port, settings_of(request),
                                                   user.id, loan_id, amount_msat, address=client_address(request))
    except Refusal as refusal:
        return await _loan_page(request, user.id, loan_id, refusal=refusal, echo={"repay_amount_sat": raw})
    return RedirectResponse(f"/loans/{loan_id}/pay/{row.id}", status_code=303)


# --- paying a repayment invoice ---------------------------------------------------------------------------


async def _repayment_invoice(request: Request) -> tuple[int, Any]:
    """The signed-in user's own repayment invoice for this loan; anyone else's is not found."""
    user = await require_role(request, *ANYONE)
    loan_id = _id_param(request, "loan_id", "loan")
    row = await deposits.deposit_status(database_of(request), user.id, _id_param(request, "invoice_id", "invoice"))
    if row.purpose != "repayment" or row.loan_id != loan_id:
        raise NotFound(N_("There is no such invoice."))
    return loan_id, row


async def _status_context(request: Request, loan_id: int, row: Any) -> dict[str, Any]:
    """The live part of the pay page: the invoice (with its QR) while unpaid, the receipt once applied."""
    paid = None
    if row.status == "paid":
        paid = await reading(database_of(request), lambda c: loan_views.repayment_by_hash(c, row.payment_hash))
    return {"invoice": row, "loan_id": loan_id, "paid": paid,
            "qr_svg": invoice_qr_svg(row.bolt11) if row.status == "unpaid" and row.bolt11 else "",
            "demo_wallet": lightning_of(request).demo_wallet is not None}


async def pay_page(request: Request) -> Response:
    loan_id, row = await _repayment_invoice(request)
    if row.bolt11 is None:
        raise NotFound(N_("This invoice was never made by the Lightning node."))
    return await render(request, "loans/pay.html", await _status_context(request, loan_id, row))


async def pay_status(request: Request) -> Response:
    """The live part as a fragment (htmx's demo-wallet answer, or anyone asking); the listener credits."""
    loan_id, row = await _repayment_invoice(request)
    return await render(request, "loans/_pay_status.html", await _status_context(request, loan_id, row))


async def pay_events(request: Request) -> Response:
    """Server-sent events: the live part again each time the invoice's state changes (marketplace/web/live.py)."""
    if not live.wants_stream(request):
        return await pay_status(request)
    loan_id, first = await _repayment_invoice(request)
    user_id = first.user_id
    latest: dict[str, Any] = {"row": first}

    async def snapshot() -> tuple[str, bool]:
        row = await deposits.deposit_status(database_of(request), user_id, first.id)
        latest["row"] = row
        if row.status != "paid":
            return row.status, row.status != "unpaid"
        applied = await reading(database_of(request), lambda c: loan_views.repayment_by_hash(c, row.payment_hash))
        return ("paid", True) if applied is not None else ("paid-pending", False)

    async def fragment() -> str:
        context = await _status_context(request, loan_id, latest["row"])
        return await live.render_text(request, "loans/_pay_status.html", context)

    return live.event_stream(request, snapshot, fragment)


# --- lists ------------------------------------------------------------------------------------------------


async def open_requests(request: Request) -> Response:
    """Anyone may read the open requests."""
    page = query_whole(request, "page", default=1, minimum=1, maximum=OPEN_PAGE_MAX,
                       sentence=N_("The page number must be a whole number from 1 to %(most)s.",
                                   most=format(OPEN_PAGE_MAX, ",")))
    found = await reading(database_of(request), lambda c: loan_views.open_requests(c, page))
    return await render(request, "loans/list.html", {**_common(settings_of(request)), "found": found})


async def my_loans(request: Request) -> Response:
    user = await require_role(request, Role.LENDER, Role.BORROWER)
    settings = settings_of(request)
    today = loan_service.utc_today()
    context: dict[str, Any] = {**_common(settings), "today": today, "summary": None, "portfolio": None}
    if user.role is Role.BORROWER:
        context["summary"] = await reading(database_of(request), lambda c: loan_views.borrower_summary(
            c, settings, user.id, today))
    else:
        context["portfolio"] = await reading(database_of(request),
                                             lambda c: loan_views.lender_portfolio(c, user.id))
    return await render(request, "loans/mine.html", context)


async def operator_report(request: Request) -> Response:
    await require_role(request, Role.OPERATOR)
    today: date = loan_service.utc_today()

    def read(conn: Any) -> tuple[Any, Any, Any]:
        held = analytics.holdings_of(conn, None, today)
        return loan_views.risk_report(conn, today), analytics.risk_of(held), analytics.calibration_table(conn)

    report, book, calibration = await reading(database_of(request), read)
    histogram = Markup(charts.loss_histogram(
        [e / MSAT_PER_SAT for e in book.histogram_edges_msat], list(book.histogram_probabilities),
        book.var99_msat / MSAT_PER_SAT, title=say(N_("How much the book could lose, and how likely")),
        x_label=say(N_("loss")), y_label=say(N_("chance")), var_label=say(N_("1 in 100:")))) if book.holdings \
        else None
    return await render(request, "loans/operator.html", {**_common(settings_of(request)), "report": report,
                                                         "today": today, "book": book, "calibration": calibration,
                                                         "histogram": histogram})


def loan_routes() -> list[BaseRoute]:
    """Every loan address; the fixed paths come before /loans/{loan_id}."""
    return [
        Route("/loans", open_requests, methods=["GET"], name="loans_open"),
        Route("/loans/new", new_request_page, methods=["GET"], name="loans_new_page"),
        Route("/loans/new", create_request, methods=["POST"], name="loans_create"),
        Route("/loans/preview", preview_fragment, methods=["GET"], name="loans_preview"),
        Route("/loans/mine", my_loans, methods=["GET"], name="loans_mine"),
        Route("/loans/notes/{note_id}/withdraw", withdraw_note, methods=["POST"], name="loans_withdraw_note"),
        Route("/loans/{loan_id}", loan_page, methods=["GET"], name="loan_page"),
        Route("/loans/{loan_id}/fund", fund, methods=["POST"], name="loan_fund"),
        Route("/loans/{loan_id}/disburse", disburse, methods=["POST"], name="loan_disburse"),
        Route("/loans/{loan_id}/repay", repay, methods=["POST"], name="loan_repay"),
        Route("/loans/{loan_id}/pay/{invoice_id}", pay_page, methods=["GET"], name="loan_pay"),
        Route("/loans/{loan_id}/pay/{invoice_id}/status", pay_status, methods=["GET"], name="loan_pay_status"),
        Route("/loans/{loan_id}/pay/{invoice_id}/events", pay_events, methods=["GET"], name="loan_pay_events"),
        Route("/operator/loans", operator_report, methods=["GET"], name="operator_loans"),
    ]
