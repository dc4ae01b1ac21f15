"""The lender's auto-invest rules: a page (/autoinvest) and the API (/api/v1/autoinvest), one service behind both."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from marketplace.domain import numbers
from marketplace.domain.autoinvest import GRADES, Rules, rules_from
from marketplace.domain.errors import InvalidInput, Refusal
from marketplace.domain.loans.calendar import Frequency
from marketplace.domain.loans.terms import PURPOSES
from marketplace.domain.money import MSAT_PER_SAT
from marketplace.domain.users import Role
from marketplace.services import autoinvest
from marketplace.web.forms import parse_form
from marketplace.web.rendering import render
from marketplace.web.sessions import require_role
from marketplace.web.state import database_of, settings_of
from marketplace.web.views.loans import bps_percent
from marketplace.domain.messages import Message, N_
from marketplace.web.i18n import say

# The page's fields and the API's JSON values, read by the one set of number rules (marketplace.domain.numbers).
_WHOLE_MAX = 10**15 - 1
_PERCENT_MAX = Decimal("999999.99")


def _text(raw: object) -> str | None:
    """The value as typed; None for what is no number at all (true/false, lists, objects)."""
    if isinstance(raw, bool) or isinstance(raw, (list, dict)):
        return None
    return str(raw if raw is not None else "")


def parse_sat_field(raw: object, label: Message) -> int:
    """Whole sat (ASCII digits, thousands separators allowed) -> msat; a sentence otherwise."""
    said = N_("Give the %(label)s as a whole number of sat, like 50000.", label=label)
    text = _text(raw)
    if text is None:
        raise InvalidInput(said)
    return numbers.whole(text, label=label, maximum=_WHOLE_MAX, grouping=True, not_number=said, too_small=said,
                         too_big=said) * MSAT_PER_SAT


def parse_percent_field(raw: object, label: Message) -> int:
    """'2.5' (percent, at most two decimals) -> basis points."""
    said = N_("Give the %(label)s as a percentage with at most two decimals, like 2.5.", label=label)
    text = _text(raw)
    if text is None or "," in text:
        raise InvalidInput(said)
    value = numbers.decimal(text.strip().rstrip("%"), label=label, places=2, maximum=_PERCENT_MAX,
                            not_number=said, out_of_range=said)
    return numbers.scaled(value, 2, label=label)


def parse_whole_field(raw: object, label: Message) -> int:
    said = N_("Give the %(label)s as a whole number.", label=label)
    text = _text(raw)
    if text is None:
        raise InvalidInput(said)
    return numbers.whole(text, label=label, maximum=_WHOLE_MAX, grouping=True, not_number=said, too_small=said,
                         too_big=said)


def rules_from_fields(fields: dict[str, Any]) -> Rules:
    return rules_from(fields, parse_sat_field, parse_percent_field, parse_whole_field)


def rules_json(rules: Rules) -> dict[str, Any]:
    return {
        "enabled": rules.enabled, "budget_msat": rules.budget_msat, "note_msat": rules.note_msat,
        "max_per_loan_msat": rules.max_per_loan_msat, "max_per_loan_bps": rules.max_per_loan_bps,
        "max_per_borrower_msat": rules.max_per_borrower_msat, "grades": sorted(rules.grades),
        "frequencies": sorted(rules.frequencies), "purposes": sorted(rules.purposes),
        "max_term_days": rules.max_term_days, "min_rate_bps": rules.min_rate_bps,
        "max_expected_loss_bps": rules.max_expected_loss_bps, "reinvest": rules.reinvest,
    }


def _echo(rules: Rules) -> dict[str, Any]:
    def percent(bps: int) -> str:
        return f"{bps // 100}" + (f".{bps % 100:02d}".rstrip("0") if bps % 100 else "")

    return {
        "enabled": rules.enabled, "budget_sat": str(rules.budget_msat // MSAT_PER_SAT),
        "note_sat": str(rules.note_msat // MSAT_PER_SAT), "max_per_loan_sat": str(rules.max_per_loan_msat // 1000),
        "max_per_loan_percent": percent(rules.max_per_loan_bps),
        "max_per_borrower_sat": str(rules.max_per_borrower_msat // MSAT_PER_SAT), "grades": set(rules.grades),
        "frequencies": set(rules.frequencies), "purposes": set(rules.purposes),
        "max_term_days": str(rules.max_term_days), "min_rate_percent": percent(rules.min_rate_bps),
        "max_expected_loss_percent": percent(rules.max_expected_loss_bps), "reinvest": rules.reinvest,
    }


async def _page(request: Request, user_id: int, echo: dict[str, Any], rules: Rules | None, *,
                error: str | None = None, status: int = 200, saved: bool = False) -> Response:
    settings = settings_of(request)
    seen = await run_in_threadpool(autoinvest.autoinvest_view, database_of(request), settings, user_id)
    return await render(request, "lender/autoinvest.html", {
        "echo": echo, "rules": rules, "error": error, "saved": saved, "available_msat": seen.available_msat,
        "held_msat": seen.held_msat, "nothing_to_buy": seen.nothing_to_buy, "matching": seen.matching,
        "orders": seen.orders, "grades": GRADES, "frequencies": [f.value for f in Frequency],
        "purposes": PURPOSES, "unit_sat": settings.note_min_sat, "pct": bps_percent,
    }, status=status)


async def autoinvest_page(request: Request) -> Response:
    user = await require_role(request, Role.LENDER)
    rules = await run_in_threadpool(autoinvest.current_rules, database_of(request), user.id)
    return await _page(request, user.id, _echo(rules or Rules()), rules,
                       saved=request.query_params.get("done") == "saved")


async def save_autoinvest(request: Request) -> Response:
    user = await require_role(request, Role.LENDER)
    form = await parse_form(request)
    fields: dict[str, Any] = {name: form.get(name) for name in (
        "enabled", "budget_sat", "note_sat", "max_per_loan_sat", "max_per_loan_percent", "max_per_borrower_sat",
        "max_term_days", "min_rate_percent", "max_expected_loss_percent", "reinvest")}
    for name in ("grades", "frequencies", "purposes"):
        fields[name] = [str(v) for v in form.getlist(name)][:20]
    echo = {k: (str(v)[:32] if isinstance(v, str) else v) for k, v in fields.items()}
    for name in ("grades", "frequencies", "purposes"):
        echo[name] = set(fields[name])
    try:
        rules = rules_from_fields(fields)
        await run_in_threadpool(lambda: autoinvest.save_rules(database_of(request), settings_of(request), user.id,
                                                              rules))
    except Refusal as refusal:
        current = await run_in_threadpool(autoinvest.current_rules, database_of(request), user.id)
        return await _page(request, user.id, echo, current, error=say(refusal), status=refusal.status)
    return RedirectResponse("/autoinvest?done=saved", status_code=303)


def autoinvest_routes() -> list[BaseRoute]:
    return [
        Route("/autoinvest", autoinvest_page, methods=["GET"], name="autoinvest_page"),
        Route("/autoinvest", save_autoinvest, methods=["POST"], name="autoinvest_save"),
    ]

