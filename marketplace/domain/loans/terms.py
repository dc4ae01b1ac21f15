"""A loan request as a person types it, parsed into exact terms."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.schedules import Frequency, Method, Prepayment
from marketplace.domain.money import parse_sat

PURPOSES = ("business", "education", "health", "housing", "farming", "transport", "family", "other")
PURPOSE_MAX = 40
STORY_MAX = 2000


@dataclass(frozen=True)
class LoanTerms:
    amount_msat: int
    annual_rate_bps: int
    count: int
    frequency: Frequency
    method: Method
    prepayment: Prepayment = Prepayment.REDUCE_TERM


def parse_rate_bps(text: str) -> int:
    """'18' or '18.5' (percent a year) -> basis points; at most two decimals."""
    cleaned = text.strip().rstrip("%").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInput("Enter the yearly interest rate as a number, like 18 or 18.5.") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput("The interest rate must be zero or more.")
    bps = value * 100
    if bps != bps.to_integral_value() or bps > 1_000_000:
        raise InvalidInput("Give the interest rate with at most two decimals, like 18.25.")
    return int(bps)


def parse_terms(form: Mapping[str, str]) -> LoanTerms:
    try:
        amount_msat = parse_sat(form.get("amount_sat", ""))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    count_text = form.get("count", "").strip()
    if not count_text.isdigit() or len(count_text) > 4:
        raise InvalidInput("Enter the number of installments as a whole number.")
    try:
        frequency = Frequency(form.get("frequency", ""))
    except ValueError:
        raise InvalidInput("Choose daily, weekly or monthly installments.") from None
    try:
        method = Method(form.get("method", Method.ANNUITY.value) or Method.ANNUITY.value)
    except ValueError:
        raise InvalidInput("Choose equal installments or equal principal.") from None
    try:
        prepayment = Prepayment(form.get("prepayment", "") or Prepayment.REDUCE_TERM.value)
    except ValueError:
        raise InvalidInput("Choose what paying early does: shorten the loan or lower the installments.") from None
    return LoanTerms(amount_msat, parse_rate_bps(form.get("rate", "")), int(count_text), frequency, method,
                     prepayment)


def parse_story(purpose: str, story: str) -> tuple[str, str]:
    purpose = purpose.strip().lower()
    if purpose not in PURPOSES:
        raise InvalidInput("Choose what the loan is for.")
    story = story.strip()
    if len(story) < 20:
        raise InvalidInput("Tell lenders in a few sentences what the loan is for (at least 20 characters).")
    if len(story) > STORY_MAX:
        raise InvalidInput(f"Keep the story under {STORY_MAX} characters.")
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in story):
        raise InvalidInput("The story contains characters that cannot be shown.")
    return purpose, story
