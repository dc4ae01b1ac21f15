"""A loan request as a person types it, parsed into exact terms."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from marketplace.domain import numbers
from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.schedules import Frequency, Method, Prepayment
from marketplace.domain.money import parse_sat
from marketplace.domain.messages import N_

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
    label = N_("interest rate")
    value = numbers.decimal(text.strip().rstrip("%"), label=label, places=2, maximum=Decimal(10_000),
                            not_number=N_("Enter the yearly interest rate as a number, like 18 or 18.5."),
                            out_of_range=N_("The interest rate must be from 0 to 10,000 %%."))
    return numbers.scaled(value, 2, label=label)


def parse_terms(form: Mapping[str, str]) -> LoanTerms:
    try:
        amount_msat = parse_sat(form.get("amount_sat", ""))
    except InvalidInput:
        raise
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    count = numbers.whole(form.get("count", ""), label=N_("number of installments"), maximum=9999,
                          not_number=N_("Enter the number of installments as a whole number."),
                          too_small=N_("Choose at least 1 installment."),
                          too_big=N_("Choose at most 9,999 installments."))
    try:
        frequency = Frequency(form.get("frequency", ""))
    except ValueError:
        raise InvalidInput(N_("Choose daily, weekly or monthly installments.")) from None
    try:
        method = Method(form.get("method", Method.ANNUITY.value) or Method.ANNUITY.value)
    except ValueError:
        raise InvalidInput(N_("Choose equal installments or equal principal.")) from None
    try:
        prepayment = Prepayment(form.get("prepayment", "") or Prepayment.REDUCE_TERM.value)
    except ValueError:
        raise InvalidInput(N_("Choose what paying early does: shorten the loan or lower the installments.")) from None
    return LoanTerms(amount_msat, parse_rate_bps(form.get("rate", "")), count, frequency, method, prepayment)


def parse_story(purpose: str, story: str) -> tuple[str, str]:
    purpose = purpose.strip().lower()
    if purpose not in PURPOSES:
        raise InvalidInput(N_("Choose what the loan is for."))
    story = story.strip()
    if len(story) < 20:
        raise InvalidInput(N_("Tell lenders in a few sentences what the loan is for (at least 20 characters)."))
    if len(story) > STORY_MAX:
        raise InvalidInput(N_("Keep the story under %(most)s characters.", most=STORY_MAX))
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in story):
        raise InvalidInput(N_("The story contains characters that cannot be shown."))
    return purpose, story
