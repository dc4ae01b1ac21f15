"""The JSON API under /api/v1: thin handlers over the services, documented in `marketplace.web.openapi`.

Every handler first resolves the caller (`api_user`: bearer token or session)
and checks the role, then reads and validates its body against the very schema
the OpenAPI document publishes, then calls one service. Refusals become
`{"error": {"code", "message"}}` via the app's handlers; nothing here answers 500
on bad input.
"""
from __future__ import annotations

from functools import partial

import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from marketplace.db import loans as loan_rows
from marketplace.db.invoices import InvoiceRow
from marketplace.db.loans import LoanRow, NoteRow, aware
from marketplace.db.outgoing import OutgoingRow
from marketplace.domain.autoinvest import Rules
from marketplace.domain.errors import BodyTooLarge, InvalidInput, NotFound, Refusal
from marketplace.domain import numbers
from marketplace.domain.numbers import TEXT_LENGTH_MAX, json_whole
from marketplace.domain.loans.limits import check_request
from marketplace.domain.loans.schedules import MAX_INSTALLMENTS, Frequency, Method, Prepayment
from marketplace.domain.loans.terms import LoanTerms
from marketplace.domain.money import MSAT_PER_SAT
from marketplace.domain.users import Role
from marketplace.services import analytics, autoinvest, deposits, loan_views, statements, withdrawals
from marketplace.services import loans as loan_service
from marketplace.services.grading import expected_loss_msat
from marketplace.services.lightning_calls import reading
from marketplace.web import openapi
from marketplace.web.api_auth import api_user
from marketplace.web.i18n import say
from marketplace.web.lightning import lightning_of
from marketplace.web.params import declared_length, path_id, query_whole
from marketplace.web.security import client_address
from marketplace.web.state import analytics_memo_of, database_of, settings_of
from marketplace.web.views import api as api_v0
from marketplace.web.views import autoinvest as autoinvest_views
from marketplace.domain.messages import Message, N_

BODY_SIZE_MAX = 64 * 1024
ANYONE = (Role.LENDER, Role.BORROWER, Role.OPERATOR)
_MESSAGE_MAX = 300
_TYPE_WORDS = {"integer": N_("a whole number (a JSON integer such as 50000, not 1.0, 1e3 or \"1\")"),
               "number": N_("a number"), "string": N_("a string"), "object": N_("a JSON object"),
               "boolean": N_("true or false"), "array": N_("a list"), "null": N_("null")}
Handler = Callable[[Request], Awaitable[Response]]


class BadJson(Refusal):
    code = "bad_json"
    status = 400


class InvalidBody(InvalidInput):
    code = "invalid_body"


class InvalidParameter(InvalidInput):
    code = "invalid_parameter"


_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in (
    ("LoanRequest", openapi.LOAN_REQUEST_BODY), ("NoteRequest", openapi.NOTE_BODY),
    ("DepositRequest", openapi.DEPOSIT_BODY), ("RepaymentRequest", openapi.REPAYMENT_BODY),
    ("WithdrawalRequest", openapi.WITHDRAWAL_BODY), ("DisbursementRequest", openapi.DISBURSEMENT_BODY),
    ("AutoInvestRules", openapi.AUTOINVEST_BODY))}


# --- reading requests ---------------------------------------------------------------------------------------


async def _raw_body(request: Request) -> bytes:
    declared = declared_length(request.headers)
    if declared is not None and declared > BODY_SIZE_MAX:
        raise BodyTooLarge(N_("The body is too large (at most %(kib)s KiB).", kib=BODY_SIZE_MAX // 1024))
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > BODY_SIZE_MAX:
                raise BodyTooLarge(N_("The body is too large (at most %(kib)s KiB).", kib=BODY_SIZE_MAX // 1024))
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadJson(N_("The request body did not arrive.")) from None
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _json_int(text: str) -> int:
    # Python refuses to read more than 4,300 digits at all; no number here needs more than a few.
    if len(text) > TEXT_LENGTH_MAX:
        raise BadJson(N_("A number in the body is too long (at most %(most)s digits).", most=TEXT_LENGTH_MAX))
    return int(text)


def _describe(error: Any) -> str | Message:
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "oneOf" and not where:
        return N_("Give exactly one of rate_percent or rate_bps.")
    if error.validator == "not" and not where:
        return N_("Give amount_sat or amount_msat, not both.")
    if error.validator == "type" and isinstance(error.validator_value, str):
        # Not the value's Python repr (Decimal('1.5')): what was expected, in words.
        expected = _TYPE_WORDS.get(error.validator_value, error.validator_value)
        return (N_("%(field)s: must be %(expected)s.", field=where, expected=expected) if where
                else N_("The body must be %(expected)s.", expected=expected))
    # jsonschema's own English (a pattern, a bound): shown as it is, after the field's name.
    text = str(error.message)
    if len(text) > _MESSAGE_MAX:
        text = text[:_MESSAGE_MAX] + "…"
    return f"{where}: {text}" if where else text


async def read_body(request: Request, schema_name: str, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object body, valid against the published schema; BadJson (400) or InvalidBody (422)."""
    raw = await _raw_body(request)
    if not raw.strip():
        if optional:
            return {}
        raise BadJson(N_("Send a JSON object as the request body."))
    try:
        # Fractions and exponents stay exact (Decimal): 1.0 and 1e3 are then no JSON integers, as on the forms.
        body = json.loads(raw, parse_constant=_no_constants, parse_int=_json_int, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise BadJson(N_("The request body is not valid JSON.")) from None
    validator = _VALIDATORS[schema_name]
    try:
        error = min(validator.iter_errors(body), key=lambda e: (len(e.absolute_path), str(e.message)),
                    default=None)
    except RecursionError:
        raise InvalidBody(N_("The request body is nested too deeply.")) from None
    if error is not None:
        raise InvalidBody(_describe(error))
    assert isinstance(body, dict)
    return body


def _query_int(request: Request, name: str, minimum: int, maximum: int, default: int) -> int:
    return query_whole(request, name, default=default, minimum=minimum, maximum=maximum,
                       sentence=N_("%(name)s must be a whole number from %(minimum)s to %(maximum)s.", name=name,
                                   minimum=minimum, maximum=maximum),
                       refusal=InvalidParameter, blank_is_default=False)


def _id_param(request: Request, name: str, what: str) -> int:
    return path_id(request, name, what)


def _sat(body: Mapping[str, Any], name: str = "amount_sat") -> int | None:
    value = body.get(name)
    return None if value is None else json_whole(value, label=name, minimum=1, maximum=openapi.SAT_MAX) * MSAT_PER_SAT


def _amount(body: Mapping[str, Any]) -> int | None:
    """amount_msat, or amount_sat in msat, or None (the schema refuses both at once)."""
    value = body.get("amount_msat")
    if value is None:
        return _sat(body)
    return json_whole(value, label="amount_msat", minimum=1, maximum=openapi.SAT_MAX * MSAT_PER_SAT)


# --- writing answers ----------------------------------------------------------------------------------------


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


def _iso(moment: datetime | date | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return aware(moment).isoformat()
    return moment.isoformat()


def _unix_iso(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def loan_summary(loan: LoanRow, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(timezone.utc)
    return {
        "id": loan.id, "status": loan.status, "delinquency": loan.delinquency, "grade": loan.grade,
        "purpose": loan.purpose, "amount_msat": loan.amount_msat, "amount_sat": loan.amount_msat // MSAT_PER_SAT,
        "funded_msat": loan.funded_msat, "remaining_msat": loan.remaining_msat,
        "funded_percent": max(0, min(100, loan.funded_msat * 100 // loan.amount_msat)) if loan.amount_msat else 0,
        "annual_rate_bps": loan.annual_rate_bps, "apr_bps": loan.apr_bps, "aprc_bps": loan.aprc_bps,
        "service_fee_bps": loan.service_fee_bps, "term_count": loan.term_count, "frequency": loan.frequency,
        "method": loan.method, "prepayment": loan.prepayment, "funding_deadline": _iso(loan.funding_deadline),
        "funding_open": loan.status == "funding" and aware(loan.funding_deadline) > moment,
        "disburse_by": _iso(loan.disburse_by), "pd_ppm": loan.pd_ppm,
        "expected_loss_msat": expected_loss_msat(
            loan.pd_ppm, loan.principal_outstanding_msat if loan.accrued_on is not None else loan.amount_msat),
        "created_at": _iso(loan.created_at),
    }


def note_json(note: NoteRow) -> dict[str, Any]:
    return {
        "id": note.id, "loan_id": note.loan_id, "amount_msat": note.amount_msat,
        "amount_sat": note.amount_msat // MSAT_PER_SAT, "principal_outstanding_msat": note.principal_outstanding_msat,
        "principal_repaid_msat": note.principal_repaid_msat, "income_msat": note.income_msat,
        "received_msat": note.received_msat, "loss_msat": note.loss_msat, "status": note.status,
        "created_at": _iso(note.created_at),
    }


def payment_json(row: OutgoingRow) -> dict[str, Any]:
    return {
        "id": row.id, "purpose": row.purpose, "status": row.status, "amount_msat": row.amount_msat,
        "amount_sat": row.amount_msat // MSAT_PER_SAT, "fee_msat": row.fee_msat,
        "fee_reserve_msat": row.fee_reserve_msat, "payment_hash": row.payment_hash, "error": row.error,
        "created_at": _iso(row.created_at),
    }


def invoice_json(row: InvoiceRow) -> dict[str, Any]:
    return {
        "id": row.id, "purpose": row.purpose, "loan_id": row.loan_id, "amount_msat": row.amount_msat,
        "amount_sat": row.amount_msat // MSAT_PER_SAT, "status": row.status, "bolt11": row.bolt11,
        "payment_hash": row.payment_hash, "expires_at": _unix_iso(row.expires_at),
        "amount_received_msat": row.amount_received_msat, "paid_at": _unix_iso(row.paid_at),
    }


def loan_detail(view: loan_views.LoanView, viewer_id: int) -> dict[str, Any]:
    loan = view.loan
    mine = loan.borrower_id == viewer_id
    borrower_view = None
    if mine:
        borrower_view = {
            "next_due": None if view.next_due is None else {"date": view.next_due[0].isoformat(),
                                                            "amount_msat": view.next_due[1]},
            "payoff_msat": view.payoff_msat, "principal_outstanding_msat": view.principal_outstanding_msat,
            "interest_accrued_msat": view.interest_accrued_msat, "days_past_due": view.days_past_due,
            "disbursement": None if view.disbursement is None else payment_json(view.disbursement),
        }
    return {
        "loan": {
            **loan_summary(loan), "story": loan.story, "borrower_name": view.borrower_name,
            "funded_at": _iso(loan.funded_at), "disbursed_at": _iso(loan.disbursed_at),
            "start_date": _iso(loan.start_date), "defaulted_on": _iso(loan.defaulted_on),
            "closed_on": _iso(loan.closed_on),
        },
        "schedule": {
            "scheduled": view.scheduled,
            "installments": [{
                "number": line.number, "due_date": line.due_date.isoformat(), "principal_msat": line.principal_msat,
                "interest_msat": line.interest_msat, "late_fee_msat": line.late_fee_msat,
                "paid_msat": line.paid_msat, "total_msat": line.total_msat, "mark": line.mark,
            } for line in view.lines],
            "total_msat": view.total_msat, "interest_msat": view.interest_msat,
        },
        "funders": [{"label": f.label, "amount_msat": f.amount_msat, "is_you": f.is_you} for f in view.funders],
        "my_notes": [note_json(n) for n in view.my_notes],
        "repayments": [{
            "received_at": _iso(r.received_at), "received_msat": r.received_msat, "applied_msat": r.applied_msat,
            "refund_msat": r.refund_msat, "service_fee_msat": r.service_fee_msat, "late_fee_msat": r.late_fee_msat,
            "interest_msat": r.interest_msat, "principal_msat": r.principal_msat,
        } for r in view.repayments],
        "borrower_view": borrower_view,
    }


async def _loan_detail(request: Request, loan_id: int, viewer_id: int) -> dict[str, Any]:
    today = loan_service.utc_today()
    view = await reading(database_of(request), lambda c: loan_views.loan_view(c, loan_id, viewer_id, today))
    return loan_detail(view, viewer_id)


# --- handlers -----------------------------------------------------------------------------------------------


async def me(request: Request) -> Response:
    user = await api_user(request, *ANYONE)
    return _json({"id": user.id, "email": user.email, "role": user.role.value, "display_name": user.display_name})


async def my_balances(request: Request) -> Response:
    """The existing balances answer (marketplace.web.views.api), reached with a token too."""
    await api_user(request, *ANYONE)
    return await api_v0.my_balances(request)


async def list_loans(request: Request) -> Response:
    await api_user(request, *ANYONE)
    status = request.query_params.get("status", "funding")
    if status not in openapi.LOAN_STATUSES:
        raise InvalidParameter(f"status must be one of {', '.join(openapi.LOAN_STATUSES)}.")
    limit = _query_int(request, "limit", 1, openapi.LIST_LIMIT_MAX, 20)
    offset = _query_int(request, "offset", 0, openapi.OFFSET_MAX, 0)
    now = datetime.now(timezone.utc)
    found = await run_in_threadpool(loan_views.loans_by_status, database_of(request), status, limit + 1, offset, now)
    return _json({"loans": [loan_summary(loan, now) for loan in found[:limit]], "limit": limit, "offset": offset,
                  "has_more": len(found) > limit})


async def get_loan(request: Request) -> Response:
    user = await api_user(request, *ANYONE)
    return _json(await _loan_detail(request, _id_param(request, "loan_id", "loan"), user.id))


def _terms(body: Mapping[str, Any]) -> LoanTerms:
    if "rate_bps" in body:
        rate_bps = json_whole(body["rate_bps"], label="rate_bps", maximum=openapi.RATE_BPS_MAX)
    else:
        rate_bps = numbers.scaled(Decimal(body["rate_percent"]), 2, label="rate_percent")
    amount = _sat(body)
    assert amount is not None
    count = json_whole(body["count"], label="count", minimum=1, maximum=MAX_INSTALLMENTS)
    return LoanTerms(amount, rate_bps, count, Frequency(body["frequency"]),
                     Method(body.get("method", Method.ANNUITY.value)),
                     Prepayment(body.get("prepayment", Prepayment.REDUCE_TERM.value)))


async def create_loan(request: Request) -> Response:
    user = await api_user(request, Role.BORROWER)
    body = await read_body(request, "LoanRequest")
    terms = _terms(body)
    settings = settings_of(request)
    database = database_of(request)
    # The limits first: the preview inside request_loan builds the schedule, so keep it to allowed terms.
    record = await reading(database, lambda c: loan_rows.borrower_record(c, user.id, settings.grace_days))
    check_request(terms.amount_msat, terms.annual_rate_bps, terms.count, terms.frequency, record,
                  loan_service.limits_of(settings))
    loan_id = await run_in_threadpool(lambda: loan_service.request_loan(
        database, settings, user.id, terms, str(body["purpose"]), str(body["story"])))
    return _json(await _loan_detail(request, loan_id, user.id), 201)


async def fund_note(request: Request) -> Response:
    user = await api_user(request, Role.LENDER)
    loan_id = _id_param(request, "loan_id", "loan")
    body = await read_body(request, "NoteRequest")
    amount = _sat(body)
    assert amount is not None
    key = body.get("idempotency_key")
    # Namespaced by user: one lender's key can never replay another's note.
    request_key = f"api:{user.id}:{key}" if isinstance(key, str) else None
    database = database_of(request)
    note_id = await run_in_threadpool(lambda: loan_service.pledge(
        database, settings_of(request), user.id, loan_id, amount, request_key))
    note, loan = await reading(database, lambda c: (loan_rows.get_note(c, note_id), loan_rows.get_loan(c, loan_id)))
    return _json({"note": note_json(note), "loan": loan_summary(loan)}, 201)


async def withdraw_note(request: Request) -> Response:
    user = await api_user(request, Role.LENDER)
    note_id = _id_param(request, "note_id", "note")
    database = database_of(request)
    await run_in_threadpool(lambda: loan_service.withdraw_pledge(database, user.id, note_id))
    note = await reading(database, lambda c: loan_rows.get_note(c, note_id))
    return _json({"note": note_json(note)})


async def portfolio(request: Request) -> Response:
    user = await api_user(request, Role.LENDER)
    today = loan_service.utc_today()
    memo = analytics_memo_of(request)
    found, figures = await reading(database_of(request), lambda c: (
        loan_views.lender_portfolio(c, user.id, size=None), analytics.lender_analytics(c, user.id, today, memo)))
    r = figures.risk
    return _json({
        "analytics": {
            "realised_xirr": figures.returns.realised_xirr, "expected_annual_return": figures.returns.expected_annual,
            "exposure_msat": r.exposure_msat, "expected_loss_msat": r.expected_loss_msat,
            "var95_msat": r.var95_msat, "es95_msat": r.es95_msat, "var99_msat": r.var99_msat,
            "es99_msat": r.es99_msat, "prob_any_loss_ppm": r.prob_any_loss_ppm, "hhi_ppm": r.hhi_ppm,
            "horizon_months": r.horizon_months, "risk_method": r.method,
            "defaulted_exposure_msat": r.defaulted_exposure_msat, "prob_further_loss_ppm": r.prob_further_loss_ppm,
            "effective_loans": r.effective_loans, "largest_share_ppm": r.largest_share_ppm,
            "by_grade": dict(r.by_grade), "by_purpose": dict(r.by_purpose), "by_term": dict(r.by_term),
            "spread": [{"notes": n, "prob_losing_ppm": p} for n, p in zip(figures.spread.counts,
                                                                           figures.spread.prob_losing_ppm)],
        },
        "totals": {
            "available_msat": found.available_msat, "reserved_msat": found.reserved_msat,
            "pledged_msat": found.pledged_msat, "principal_outstanding_msat": found.principal_outstanding_msat,
            "income_msat": found.interest_earned_msat, "received_msat": found.received_msat,
            "losses_msat": found.losses_msat, "net_return_msat": found.interest_earned_msat - found.losses_msat,
        },
        "by_state": {status: count for status, count, _ in found.by_state},
        "notes": [{"note": note_json(item.note), "loan": loan_summary(item.loan)} for item in found.notes],
    })


async def statement(request: Request) -> Response:
    user = await api_user(request, Role.LENDER, Role.BORROWER)
    limit = _query_int(request, "limit", 1, openapi.STATEMENT_LIMIT_MAX, 50)
    offset = _query_int(request, "offset", 0, openapi.OFFSET_MAX, 0)
    found = await run_in_threadpool(statements.api_lines, database_of(request), user.id, limit + 1, offset)
    return _json({"lines": found[:limit], "limit": limit, "offset": offset, "has_more": len(found) > limit})


async def create_deposit(request: Request) -> Response:
    user = await api_user(request, Role.LENDER)
    body = await read_body(request, "DepositRequest")
    amount = _sat(body)
    assert amount is not None
    runtime = lightning_of(request)
    row = await deposits.create_deposit_invoice(database_of(request), runtime.port, settings_of(request), user.id,
                                                amount, address=client_address(request))
    return _json(invoice_json(row), 201)


async def get_deposit(request: Request) -> Response:
    user = await api_user(request, Role.LENDER)
    row = await deposits.deposit_status(database_of(request), user.id, _id_param(request, "invoice_id", "invoice"))
    if row.purpose != "deposit":
        raise NotFound(N_("There is no such invoice."))
    return _json(invoice_json(row))


async def create_repayment(request: Request) -> Response:
    user = await api_user(request, Role.BORROWER)
    loan_id = _id_param(request, "loan_id", "loan")
    body = await read_body(request, "RepaymentRequest", optional=True)
    runtime = lightning_of(request)
    row = await loan_service.repayment_invoice(database_of(request), runtime.port, settings_of(request), user.id,
                                               loan_id, _amount(body), address=client_address(request))
    return _json(invoice_json(row), 201)


async def create_disbursement(request: Request) -> Response:
    user = await api_user(request, Role.BORROWER)
    loan_id = _id_param(request, "loan_id", "loan")
    body = await read_body(request, "DisbursementRequest")
    bolt11 = str(body["bolt11"]).strip()
    if not bolt11:
        raise InvalidBody(N_("bolt11: paste a Lightning invoice (BOLT11) for exactly the loan amount."))
    runtime = lightning_of(request)
    row = await loan_service.disburse(database_of(request), runtime.port, runtime.facts, settings_of(request),
                                      user.id, loan_id, bolt11)
    return _json(payment_json(row))


async def get_repayment(request: Request) -> Response:
    user = await api_user(request, Role.BORROWER)
    loan_id = _id_param(request, "loan_id", "loan")
    row = await deposits.deposit_status(database_of(request), user.id, _id_param(request, "invoice_id", "invoice"))
    if row.purpose != "repayment" or row.loan_id != loan_id:
        raise NotFound(N_("There is no such invoice."))
    return _json(invoice_json(row))


async def create_withdrawal(request: Request) -> Response:
    user = await api_user(request, Role.LENDER, Role.BORROWER)
    body = await read_body(request, "WithdrawalRequest")
    bolt11 = str(body["bolt11"]).strip()
    if not bolt11:
        raise InvalidBody(N_("bolt11: paste the Lightning invoice (BOLT11) to pay."))
    runtime = lightning_of(request)
    row = await withdrawals.withdraw(database_of(request), runtime.port, runtime.facts, settings_of(request),
                                     user.id, bolt11, _sat(body))
    return _json(payment_json(row))


async def _autoinvest_answer(request: Request, user_id: int) -> Response:
    seen = await run_in_threadpool(partial(autoinvest.autoinvest_view, database_of(request), settings_of(request),
                                           user_id, orders=False))
    # Why nothing would be bought whatever matches (a budget below one note), in the reader's language.
    return _json({"rules": None if seen.rules is None else autoinvest_views.rules_json(seen.rules),
                  "matching_requests": seen.matching, "held_msat": seen.held_msat,
                  "available_msat": seen.available_msat,
                  "nothing_to_buy": None if seen.nothing_to_buy is None else say(seen.nothing_to_buy)})


async def get_autoinvest(request: Request) -> Response:
    user = await api_user(request, Role.LENDER)
    return await _autoinvest_answer(request, user.id)


async def put_autoinvest(request: Request) -> Response:
    user = await api_user(request, Role.LENDER)
    body = await read_body(request, "AutoInvestRules")
    defaults = Rules()
    rules = Rules(
        enabled=bool(body["enabled"]), budget_msat=int(body["budget_msat"]),
        note_msat=int(body.get("note_msat", defaults.note_msat)),
        max_per_loan_msat=int(body.get("max_per_loan_msat", defaults.max_per_loan_msat)),
        max_per_loan_bps=int(body.get("max_per_loan_bps", defaults.max_per_loan_bps)),
        max_per_borrower_msat=int(body.get("max_per_borrower_msat", defaults.max_per_borrower_msat)),
        grades=frozenset(body.get("grades", defaults.grades)),
        frequencies=frozenset(body.get("frequencies", defaults.frequencies)),
        purposes=frozenset(body.get("purposes", defaults.purposes)),
        max_term_days=int(body.get("max_term_days", defaults.max_term_days)),
        min_rate_bps=int(body.get("min_rate_bps", defaults.min_rate_bps)),
        max_expected_loss_bps=int(body.get("max_expected_loss_bps", defaults.max_expected_loss_bps)),
        reinvest=bool(body.get("reinvest", defaults.reinvest)))
    database, settings = database_of(request), settings_of(request)
    await run_in_threadpool(lambda: autoinvest.save_rules(database, settings, user.id, rules))
    return await _autoinvest_answer(request, user.id)


_DOCUMENT: dict[str, Any] | None = None


async def openapi_json(request: Request) -> Response:
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = openapi.openapi_document()
    return _json(_DOCUMENT)


def _query_names(path: str, method: str) -> frozenset[str]:
    operation = openapi.openapi_document()["paths"][path][method]
    return frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")


def _strict(path: str, method: str, handler: Handler) -> Handler:
    """The caller first (401 before anything else), then no query parameter the document does not name."""
    allowed = _query_names(path, method)

    @functools.wraps(handler)
    async def checked(request: Request) -> Response:
        await api_user(request)
        unknown = sorted(set(request.query_params.keys()) - allowed)
        if unknown:
            shown = unknown[0][:40]
            raise InvalidParameter(
                N_("Unknown query parameter %(name)s; this address takes %(allowed)s.", name=repr(shown),
                   allowed=", ".join(sorted(allowed))) if allowed
                else N_("Unknown query parameter %(name)s; this address takes none.", name=repr(shown)))
        return await handler(request)

    return checked


_TABLE: tuple[tuple[str, str, Handler, str], ...] = (
    ("/openapi.json", "get", openapi_json, "api_openapi"),
    ("/me", "get", me, "api_me"),
    ("/me/balances", "get", my_balances, "api_v1_my_balances"),
    ("/loans", "get", list_loans, "api_loans"),
    ("/loans", "post", create_loan, "api_create_loan"),
    ("/loans/{loan_id}", "get", get_loan, "api_loan"),
    ("/loans/{loan_id}/notes", "post", fund_note, "api_fund_note"),
    ("/notes/{note_id}", "delete", withdraw_note, "api_withdraw_note"),
    ("/portfolio", "get", portfolio, "api_portfolio"),
    ("/statement", "get", statement, "api_statement"),
    ("/deposits", "post", create_deposit, "api_create_deposit"),
    ("/deposits/{invoice_id}", "get", get_deposit, "api_deposit"),
    ("/loans/{loan_id}/repayments", "post", create_repayment, "api_create_repayment"),
    ("/loans/{loan_id}/disbursement", "post", create_disbursement, "api_create_disbursement"),
    ("/loans/{loan_id}/repayments/{invoice_id}", "get", get_repayment, "api_repayment"),
    ("/withdrawals", "post", create_withdrawal, "api_create_withdrawal"),
    ("/autoinvest", "get", get_autoinvest, "api_autoinvest"),
    ("/autoinvest", "put", put_autoinvest, "api_set_autoinvest"),
)


def _guarded(path: str, method: str, handler: Handler) -> Handler:
    if handler is openapi_json:
        return handler  # public
    if handler is my_balances:
        return handler  # as before this API: it ignores any query (tests/web/test_access.py)
    return _strict(path, method, handler)


def api_routes() -> list[BaseRoute]:
    """Every /api/v1 route; all but the document authenticate first, and refuse query names it does not know."""
    return [Route(openapi.API_PREFIX + path, _guarded(path, method, handler), methods=[method.upper()], name=name)
            for path, method, handler, name in _TABLE]
