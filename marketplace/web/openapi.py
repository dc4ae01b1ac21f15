"""The OpenAPI 3.1 document of `/api/v1`, written by hand as data.

The request-body schemas here are the ones the handlers validate with
(`marketplace.web.views.api_v1.read_body`), so the document cannot drift from
what the API accepts; the tests check every answer against the response
schemas, and that every route is documented with exactly its methods.
"""
from __future__ import annotations

from typing import Any

from marketplace.domain.loans.schedules import MAX_INSTALLMENTS, Frequency, Method, Prepayment
from marketplace.domain.loans.terms import PURPOSES, STORY_MAX

Schema = dict[str, Any]

API_PREFIX = "/api/v1"
# 21 million bitcoin in sat: no amount in this API can be larger.
SAT_MAX = 2_100_000_000_000_000
BOLT11_MAX = 4096
RATE_BPS_MAX = 1_000_000
LIST_LIMIT_MAX = 100
STATEMENT_LIMIT_MAX = 200
OFFSET_MAX = 1_000_000
LOAN_STATUSES = ["funding", "funded", "active", "repaid", "expired", "lapsed", "written_off"]
# 21 million bitcoin in msat.
MSAT_MAX = SAT_MAX * 1000
NOTE_STATUSES = ["pledged", "released", "active", "repaid", "written_off"]
INVOICE_STATUSES = ["creating", "unpaid", "paid", "expired", "failed"]
PAYMENT_STATUSES = ["pending", "succeeded", "failed", "unknown"]
ACCOUNTS = ["available", "reserved", "pending"]
IDEMPOTENCY_KEY_PATTERN = "^[A-Za-z0-9_-]{16,64}$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": list(properties) if required is None else required, **extra}


INT = {"type": "integer"}
MSAT = {"type": "integer", "description": "millisatoshis"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
DATETIME = {"type": "string", "format": "date-time"}
DATE = {"type": "string", "format": "date"}
AMOUNT_SAT = {"type": "integer", "minimum": 1, "maximum": SAT_MAX, "description": "whole satoshis"}

# --- request bodies: the handlers validate against exactly these --------------------------------------------

LOAN_REQUEST_BODY: Schema = {
    **_object({
        "amount_sat": AMOUNT_SAT,
        "rate_percent": {"type": "number", "minimum": 0, "maximum": RATE_BPS_MAX // 100,
                         "description": "yearly interest in percent, at most two decimals (give this or rate_bps)"},
        "rate_bps": {"type": "integer", "minimum": 0, "maximum": RATE_BPS_MAX,
                     "description": "yearly interest in basis points (give this or rate_percent)"},
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_INSTALLMENTS},
        "frequency": {"type": "string", "enum": [f.value for f in Frequency]},
        "method": {"type": "string", "enum": [m.value for m in Method], "default": Method.ANNUITY.value},
        "prepayment": {"type": "string", "enum": [p.value for p in Prepayment],
                       "default": Prepayment.REDUCE_TERM.value,
                       "description": "what paying more than is due does: shorten the loan or lower the installments"},
        "purpose": {"type": "string", "enum": list(PURPOSES)},
        "story": {"type": "string", "minLength": 1, "maxLength": STORY_MAX},
    }, required=["amount_sat", "count", "frequency", "purpose", "story"]),
    "oneOf": [{"required": ["rate_percent"]}, {"required": ["rate_bps"]}],
}
NOTE_BODY: Schema = _object({
    "amount_sat": AMOUNT_SAT,
    "idempotency_key": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN,
                        "description": "repeat a request with the same key and it is done once"},
}, required=["amount_sat"])
DEPOSIT_BODY: Schema = _object({"amount_sat": AMOUNT_SAT})
REPAYMENT_BODY: Schema = {
    **_object({
        "amount_sat": AMOUNT_SAT,
        "amount_msat": {"type": "integer", "minimum": 1, "maximum": MSAT_MAX,
                        "description": "millisatoshis (a payoff is rarely whole sats)"},
    }, required=[], description="without an amount: the next amount due; give amount_sat or amount_msat, not both"),
    "not": {"required": ["amount_sat", "amount_msat"]},
}
_AUTOINVEST_FIELDS: dict[str, Schema] = {
    "enabled": BOOL,
    "budget_msat": {"type": "integer", "minimum": 0, "maximum": MSAT_MAX,
                    "description": "the most auto-invest holds at once (reinvest) or puts in over time"},
    "note_msat": {"type": "integer", "minimum": 1, "maximum": MSAT_MAX,
                  "description": "the largest note it buys in one loan; a multiple of the marketplace's note"},
    "max_per_loan_msat": {"type": "integer", "minimum": 1, "maximum": MSAT_MAX},
    "max_per_loan_bps": {"type": "integer", "minimum": 1, "maximum": 10_000,
                         "description": "of the account's value (available + reserved + outstanding)"},
    "max_per_borrower_msat": {"type": "integer", "minimum": 1, "maximum": MSAT_MAX},
    "grades": {"type": "array", "items": {"type": "string", "enum": ["A", "B", "C", "D", "E"]}, "minItems": 1,
               "maxItems": 5, "uniqueItems": True},
    "frequencies": {"type": "array", "items": {"type": "string", "enum": [f.value for f in Frequency]},
                    "minItems": 1, "maxItems": 3, "uniqueItems": True},
    "purposes": {"type": "array", "items": {"type": "string", "enum": list(PURPOSES)}, "minItems": 1,
                 "maxItems": len(PURPOSES), "uniqueItems": True},
    "max_term_days": {"type": "integer", "minimum": 1, "maximum": 5 * 366},
    "min_rate_bps": {"type": "integer", "minimum": 0, "maximum": RATE_BPS_MAX},
    "max_expected_loss_bps": {"type": "integer", "minimum": 0, "maximum": 10_000,
                              "description": "expected loss (PD x 90 %) of what it buys, as a share of it"},
    "reinvest": BOOL,
}
AUTOINVEST_BODY: Schema = _object(_AUTOINVEST_FIELDS, required=["enabled", "budget_msat"],
                                  description="missing fields take their defaults")
DISBURSEMENT_BODY: Schema = _object({
    "bolt11": {"type": "string", "minLength": 1, "maxLength": BOLT11_MAX,
               "description": "an invoice of the borrower's own wallet for exactly the loan amount"},
})
WITHDRAWAL_BODY: Schema = _object({
    "bolt11": {"type": "string", "minLength": 1, "maxLength": BOLT11_MAX},
    "amount_sat": {**AMOUNT_SAT, "description": "only for an invoice without an amount"},
}, required=["bolt11"])

_LOAN_SUMMARY: Schema = _object({
    "id": INT, "status": {"type": "string", "enum": LOAN_STATUSES},
    "delinquency": {"type": "string", "enum": ["current", "grace", "late", "defaulted"]},
    "grade": STR, "purpose": STR, "amount_msat": MSAT, "amount_sat": INT, "funded_msat": MSAT,
    "remaining_msat": MSAT, "funded_percent": {"type": "integer", "minimum": 0, "maximum": 100},
    "annual_rate_bps": INT, "apr_bps": INT,
    "aprc_bps": {**INT, "description": "effective annual rate with compounding (EU APRC)"},
    "service_fee_bps": {**INT, "description": "of the lenders' income (interest and late fees), never principal"},
    "term_count": INT,
    "frequency": {"type": "string", "enum": [f.value for f in Frequency]},
    "method": {"type": "string", "enum": [m.value for m in Method]},
    "prepayment": {"type": "string", "enum": [p.value for p in Prepayment]},
    "funding_deadline": DATETIME, "funding_open": BOOL,
    "disburse_by": {**_nullable(DATETIME), "description": "a funded request lapses if not disbursed by then"},
    "pd_ppm": {**INT, "description": "probability of default over the remaining term, parts per million"},
    "expected_loss_msat": {**MSAT, "description": "PD x exposure x 90 % loss given default"},
    "created_at": DATETIME,
})
_LOAN_EXTRA: dict[str, Schema] = {
    "story": STR, "borrower_name": STR, "funded_at": _nullable(DATETIME), "disbursed_at": _nullable(DATETIME),
    "start_date": _nullable(DATE), "defaulted_on": _nullable(DATE), "closed_on": _nullable(DATE),
}

# --- answers ------------------------------------------------------------------------------------------------

SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": _object({"code": STR, "message": STR})}),
    "Me": _object({"id": INT, "email": STR, "role": {"type": "string", "enum": ["lender", "borrower", "operator"]},
                   "display_name": STR}),
    "Balances": _object({"available_msat": MSAT, "reserved_msat": MSAT, "pending_msat": MSAT}),
    "LoanSummary": _LOAN_SUMMARY,
    "Loan": {**_LOAN_SUMMARY, "properties": {**_LOAN_SUMMARY["properties"], **_LOAN_EXTRA},
             "required": [*_LOAN_SUMMARY["required"], *_LOAN_EXTRA]},
    "Installment": _object({
        "number": INT, "due_date": DATE, "principal_msat": MSAT, "interest_msat": MSAT, "late_fee_msat": MSAT,
        "paid_msat": MSAT, "total_msat": MSAT,
        "mark": {"type": "string", "enum": ["", "paid", "partial", "late", "due", "upcoming"],
                 "description": "empty before the loan starts (a preview from today)"},
    }),
    "Funder": _object({"label": STR, "amount_msat": MSAT, "is_you": BOOL}),
    "Repayment": _object({
        "received_at": DATETIME, "received_msat": MSAT, "applied_msat": MSAT, "refund_msat": MSAT,
        "service_fee_msat": MSAT, "late_fee_msat": MSAT, "interest_msat": MSAT, "principal_msat": MSAT,
    }),
    "Note": _object({
        "id": INT, "loan_id": INT, "amount_msat": MSAT, "amount_sat": INT, "principal_outstanding_msat": MSAT,
        "principal_repaid_msat": MSAT, "income_msat": MSAT, "received_msat": MSAT, "loss_msat": MSAT,
        "status": {"type": "string", "enum": NOTE_STATUSES}, "created_at": DATETIME,
    }),
    "Payment": _object({
        "id": INT, "purpose": STR, "status": {"type": "string", "enum": PAYMENT_STATUSES}, "amount_msat": MSAT,
        "amount_sat": INT, "fee_msat": _nullable(MSAT), "fee_reserve_msat": MSAT, "payment_hash": STR,
        "error": STR, "created_at": DATETIME,
    }),
    "BorrowerView": _object({
        "next_due": _nullable(_object({"date": DATE, "amount_msat": MSAT})),
        "payoff_msat": MSAT, "principal_outstanding_msat": MSAT,
        "interest_accrued_msat": {**MSAT, "description": "interest owed today, not yet paid"},
        "days_past_due": INT,
        "disbursement": _nullable(_ref("Payment")),
    }, description="only for the loan's borrower"),
    "LoanDetail": _object({
        "loan": _ref("Loan"),
        "schedule": _object({"scheduled": BOOL, "installments": {"type": "array", "items": _ref("Installment")},
                             "total_msat": MSAT, "interest_msat": MSAT}),
        "funders": {"type": "array", "items": _ref("Funder")},
        "my_notes": {"type": "array", "items": _ref("Note")},
        "repayments": {"type": "array", "items": _ref("Repayment")},
        "borrower_view": _nullable(_ref("BorrowerView")),
    }),
    "LoanPage": _object({"loans": {"type": "array", "items": _ref("LoanSummary")}, "limit": INT, "offset": INT,
                         "has_more": BOOL}),
    "NoteCreated": _object({"note": _ref("Note"), "loan": _ref("LoanSummary")}),
    "NoteWithdrawn": _object({"note": _ref("Note")}),
    "PortfolioNote": _object({"note": _ref("Note"), "loan": _ref("LoanSummary")}),
    "Portfolio": _object({
        "analytics": _object({
            "realised_xirr": {**_nullable({"type": "number"}),
                              "description": "yearly XIRR of the lending cash flows; null until defined"},
            "expected_annual_return": {"type": "number", "description": "loss-adjusted, of current holdings"},
            "exposure_msat": MSAT, "expected_loss_msat": MSAT, "var95_msat": MSAT, "es95_msat": MSAT,
            "var99_msat": MSAT, "es99_msat": MSAT, "prob_any_loss_ppm": INT, "hhi_ppm": INT,
            "effective_loans": {"type": "number"}, "largest_share_ppm": INT,
            "horizon_months": {"type": "number", "description": "every risk figure is over this horizon (12)"},
            "risk_method": {"type": "string", "enum": ["lattice", "normal"],
                            "description": "lattice: the exact loss distribution; normal: 200-node mixture"},
            "defaulted_exposure_msat": {**MSAT, "description": "in loans that have defaulted: loss already taken"},
            "prob_further_loss_ppm": {**INT, "description": "chance of a loss on what has not defaulted"},
            "by_grade": {"type": "object", "additionalProperties": MSAT},
            "by_purpose": {"type": "object", "additionalProperties": MSAT},
            "by_term": {"type": "object", "additionalProperties": MSAT},
            "spread": {"type": "array", "items": _object({"notes": INT, "prob_losing_ppm": INT})},
        }),
        "totals": _object({
            "available_msat": MSAT, "reserved_msat": MSAT, "pledged_msat": MSAT,
            "principal_outstanding_msat": MSAT, "income_msat": MSAT, "received_msat": MSAT, "losses_msat": MSAT,
            "net_return_msat": {**MSAT, "description": "income less losses"},
        }),
        "by_state": {"type": "object", "additionalProperties": INT},
        "notes": {"type": "array", "items": _ref("PortfolioNote")},
    }),
    "StatementLine": _object({
        "entry_id": INT, "posted_at": DATETIME, "kind": STR, "account": {"type": "string", "enum": ACCOUNTS},
        "amount_msat": {**MSAT, "description": "positive: the balance went up"}, "memo": STR,
    }),
    "Statement": _object({"lines": {"type": "array", "items": _ref("StatementLine")}, "limit": INT, "offset": INT,
                          "has_more": BOOL}),
    "Invoice": _object({
        "id": INT, "purpose": {"type": "string", "enum": ["deposit", "repayment"]}, "loan_id": _nullable(INT),
        "amount_msat": MSAT, "amount_sat": INT, "status": {"type": "string", "enum": INVOICE_STATUSES},
        "bolt11": _nullable(STR), "payment_hash": _nullable(STR), "expires_at": _nullable(DATETIME),
        "amount_received_msat": _nullable(MSAT), "paid_at": _nullable(DATETIME),
    }),
    "LoanRequest": LOAN_REQUEST_BODY,
    "NoteRequest": NOTE_BODY,
    "DepositRequest": DEPOSIT_BODY,
    "RepaymentRequest": REPAYMENT_BODY,
    "DisbursementRequest": DISBURSEMENT_BODY,
    "AutoInvestRules": AUTOINVEST_BODY,
    "AutoInvest": _object({"rules": _nullable(_object(_AUTOINVEST_FIELDS)), "matching_requests": INT,
                           "held_msat": MSAT, "available_msat": MSAT,
                           "nothing_to_buy": {**_nullable(STR), "description": "why nothing would be bought "
                                              "whatever matches (a budget below one note), or null"}}),
    "WithdrawalRequest": WITHDRAWAL_BODY,
}

_ERROR_TEXT = {
    400: "The body is not JSON (code bad_json)",
    401: "No credentials, or an unknown or revoked token (codes signin_required, invalid_token)",
    403: ("The account's role may not do this (code forbidden); or a write that carries no bearer token and so "
          "is a browser's, without its X-CSRF-Token (code csrf_failed)"),
    404: "No such object, or not the caller's own (code not_found)",
    409: "The state does not allow it (codes conflict, insufficient_funds, idempotency_conflict)",
    413: "The body is larger than 64 KiB (code too_large)",
    429: ("Too many invoices asked for in a short time by this account (code too_many_invoices), or too many "
          "still unpaid from this network address or in all (code too_many_open_invoices), or auto-invest rules "
          "changed too often (code too_many_rule_changes); see Retry-After"),
    422: ("A field or parameter is wrong, or the query names a parameter the operation does not take (codes "
          "invalid_body, invalid_parameter, invalid_input, invoice_refused)"),
    503: "The Lightning node cannot be reached; nothing was changed (code lightning_unavailable)",
}


def _error(status: int) -> Schema:
    answer: Schema = {"description": _ERROR_TEXT[status],
                      "content": {"application/json": {"schema": _ref("Error")}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"description": "seconds to wait", "required": False,
                                             "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return answer


def _ok(description: str, schema_name: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _id(name: str, what: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": f"the {what}'s id",
            "schema": {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}}


def _query_int(name: str, minimum: int, maximum: int, default: int, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default}}


def _operation(summary: str, ok: tuple[int, str, str], errors: tuple[int, ...], *, roles: str,
               parameters: list[Schema] | None = None, body: str | None = None, body_required: bool = True,
               tag: str = "") -> Schema:
    status, description, schema_name = ok
    operation: Schema = {
        "summary": summary,
        "description": f"Roles: {roles}.",
        "operationId": "",
        "tags": [tag] if tag else [],
        "responses": {str(status): _ok(description, schema_name),
                      **{str(code): _error(code) for code in sorted({401, 403, 422, *errors})}},
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {"application/json": {"schema": _ref(body)}}}
        for code in (400, 413, 422):
            operation["responses"].setdefault(str(code), _error(code))
        operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation


_BODY = (400, 413, 422)


def _paths() -> dict[str, dict[str, Schema]]:
    anyone = "lender, borrower, operator"
    paths: dict[str, dict[str, Schema]] = {
        "/me": {"get": _operation("The caller", (200, "Who the token (or session) belongs to", "Me"), (),
                                  roles=anyone, tag="me")},
        "/me/balances": {"get": _operation("The caller's balances", (200, "Balances in msat", "Balances"), (),
                                           roles=anyone, tag="me")},
        "/loans": {
            "get": _operation(
                "Loan requests and loans", (200, "A page of loans, newest first", "LoanPage"), (422,), roles=anyone,
                tag="loans", parameters=[
                    {"name": "status", "in": "query", "required": False,
                     "description": "funding (the default) lists requests still taking pledges",
                     "schema": {"type": "string", "enum": LOAN_STATUSES, "default": "funding"}},
                    _query_int("limit", 1, LIST_LIMIT_MAX, 20, "page size"),
                    _query_int("offset", 0, OFFSET_MAX, 0, "loans to skip"),
                ]),
            "post": _operation("Ask for a loan", (201, "The new request, open for funding", "LoanDetail"),
                               (409, *_BODY), roles="borrower", body="LoanRequest", tag="loans"),
        },
        "/loans/{loan_id}": {
            "get": _operation("A loan with its schedule and funding", (200, "The loan", "LoanDetail"), (404,),
                              roles=anyone, parameters=[_id("loan_id", "loan")], tag="loans"),
        },
        "/loans/{loan_id}/notes": {
            "post": _operation("Fund a note", (201, "The pledged note", "NoteCreated"), (404, 409, *_BODY),
                               roles="lender", parameters=[_id("loan_id", "loan")], body="NoteRequest",
                               tag="notes"),
        },
        "/notes/{note_id}": {
            "delete": _operation("Withdraw a pledge", (200, "The released note", "NoteWithdrawn"), (404, 409),
                                 roles="lender", parameters=[_id("note_id", "note")], tag="notes"),
        },
        "/portfolio": {"get": _operation("The lender's notes and totals", (200, "The portfolio", "Portfolio"), (),
                                         roles="lender", tag="notes")},
        "/statement": {
            "get": _operation("Every ledger line of the caller's accounts",
                              (200, "A page of lines, newest first", "Statement"), (422,), roles="lender, borrower",
                              tag="me", parameters=[
                                  _query_int("limit", 1, STATEMENT_LIMIT_MAX, 50, "page size"),
                                  _query_int("offset", 0, OFFSET_MAX, 0, "lines to skip")]),
        },
        "/deposits": {
            "post": _operation("A deposit invoice", (201, "The invoice to pay", "Invoice"), (*_BODY, 429, 503),
                               roles="lender", body="DepositRequest", tag="money"),
        },
        "/deposits/{invoice_id}": {
            "get": _operation("A deposit invoice's status", (200, "The invoice", "Invoice"), (404,),
                              roles="lender", parameters=[_id("invoice_id", "invoice")], tag="money"),
        },
        "/loans/{loan_id}/repayments": {
            "post": _operation("A repayment invoice", (201, "The invoice to pay", "Invoice"),
                               (404, 409, *_BODY, 429, 503), roles="borrower", parameters=[_id("loan_id", "loan")],
                               body="RepaymentRequest", body_required=False, tag="money"),
        },
        "/loans/{loan_id}/disbursement": {
            "post": _operation("Receive a funded loan: pay it out to the borrower's invoice",
                               (200, "The payment: succeeded (the loan is active), failed (try a new invoice) or "
                                     "unknown (held until the node tells)", "Payment"),
                               (404, 409, *_BODY, 503), roles="borrower", parameters=[_id("loan_id", "loan")],
                               body="DisbursementRequest", tag="money"),
        },
        "/loans/{loan_id}/repayments/{invoice_id}": {
            "get": _operation("A repayment invoice's status", (200, "The invoice", "Invoice"), (404,),
                              roles="borrower", parameters=[_id("loan_id", "loan"), _id("invoice_id", "invoice")],
                              tag="money"),
        },
        "/withdrawals": {
            "post": _operation("Pay a BOLT11 invoice from the available balance",
                               (200, "The payment: succeeded, failed (nothing left the balance) or unknown "
                                     "(held until the node tells)", "Payment"),
                               (409, *_BODY, 503), roles="lender, borrower", body="WithdrawalRequest", tag="money"),
        },
        "/autoinvest": {
            "get": _operation("The caller's auto-invest rules", (200, "Rules (null when never set) and what they "
                              "match now", "AutoInvest"), (), roles="lender", tag="notes"),
            "put": _operation("Set the auto-invest rules", (200, "The rules as stored", "AutoInvest"), (*_BODY, 429),
                              roles="lender", body="AutoInvestRules", tag="notes"),
        },
        "/openapi.json": {
            "get": {"summary": "This document", "operationId": "openapi", "security": [], "tags": ["meta"],
                    "responses": {"200": {"description": "The OpenAPI 3.1 document",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}}},
        },
    }
    # The one operation that ignores unknown query parameters (as it did before this API) has no 422.
    del paths["/me/balances"]["get"]["responses"]["422"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            if not operation.get("operationId"):
                operation["operationId"] = method + "_" + path.strip("/").replace("/", "_").replace(
                    "{", "").replace("}", "")
    return paths


def openapi_document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Microlend API",
            "version": "1.0.0",
            "description": (
                "What a lender's or borrower's own software needs: loans, notes, portfolio, statement, deposit "
                "and repayment invoices, withdrawals. Amounts are integers in millisatoshis (msat) unless named "
                "_sat; times are ISO 8601 in UTC. Authenticate with `Authorization: Bearer <token>` (tokens are "
                "made and revoked at /settings). A browser session works too, with the X-CSRF-Token header on "
                "state-changing requests. Query parameters an operation does not name are refused (422), except "
                "on /me/balances. Every error is JSON: {\"error\": {\"code\", \"message\"}}."),
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API token from /settings (ml_...)"}},
        },
    }
