"""A lender's auto-invest rules: what they are, how they read from a form or JSON, and what they allow.

The engine (services/autoinvest.py, portfolio/allocation.py) spreads the
lender's money by one stated measure: **as many loans as the rules allow, in
equal notes** — one note per loan, never two in the same loan, each a whole
note of the lender's size (its per-loan limits may make it smaller), bought
only where the request has room for it; a short budget buys fewer notes, not
smaller ones (portfolio.allocation.whole_notes, after the flow).
Among lenders competing for the same requests, the one with the largest share
of their account idle is served first.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.calendar import Frequency
from marketplace.domain.loans.terms import PURPOSES
from marketplace.domain.money import MSAT_PER_SAT, format_msat
from marketplace.domain.messages import Message, N_

GRADES = ("A", "B", "C", "D", "E")
BPS_PER_UNIT = 10_000
MAX_TERM_DAYS = 5 * 366


@dataclass(frozen=True)
class Rules:
    enabled: bool = False
    # The most auto-invest may have in notes at once (with reinvest) or put in over time (without).
    budget_msat: int = 0
    note_msat: int = 1_000_000
    max_per_loan_msat: int = 10_000_000
    max_per_loan_bps: int = 500  # of the account's value (available + reserved + outstanding)
    max_per_borrower_msat: int = 20_000_000
    grades: frozenset[str] = field(default_factory=lambda: frozenset(GRADES))
    frequencies: frozenset[str] = field(default_factory=lambda: frozenset(f.value for f in Frequency))
    purposes: frozenset[str] = field(default_factory=lambda: frozenset(PURPOSES))
    max_term_days: int = 366
    min_rate_bps: int = 0
    # The expected loss (PD x LGD) of what auto-invest buys, as a share of it, at most.
    max_expected_loss_bps: int = 1000
    reinvest: bool = True

    def check(self, unit_msat: int) -> "Rules":
        """The rules, or InvalidInput naming the first limit that makes no sense."""
        if self.budget_msat < 0:
            raise InvalidInput(N_("The budget cannot be negative."))
        if self.note_msat < unit_msat or self.note_msat % unit_msat:
            raise InvalidInput(N_("The note size must be a whole number of %(unit)s notes, at least %(unit)s.",
                                  unit=format_msat(unit_msat)))
        if self.max_per_loan_msat < self.note_msat:
            raise InvalidInput(N_("The most per loan must be at least one note."))
        if self.max_per_borrower_msat < self.note_msat:
            raise InvalidInput(N_("The most per borrower must be at least one note."))
        if not 1 <= self.max_per_loan_bps <= BPS_PER_UNIT:
            raise InvalidInput(N_("The most per loan, as a share of the portfolio, must be between 0.01 %% and 100 %%."))
        if not self.grades:
            raise InvalidInput(N_("Choose at least one grade."))
        if not self.frequencies:
            raise InvalidInput(N_("Choose at least one installment frequency."))
        if not self.purposes:
            raise InvalidInput(N_("Choose at least one purpose."))
        if not 1 <= self.max_term_days <= MAX_TERM_DAYS:
            raise InvalidInput(N_("The longest term must be between 1 and %(most)s days.", most=format(MAX_TERM_DAYS, ",")))
        if not 0 <= self.min_rate_bps <= 100 * BPS_PER_UNIT:
            raise InvalidInput(N_("The lowest rate must be between 0 %% and 10,000 %%."))
        if not 0 <= self.max_expected_loss_bps <= BPS_PER_UNIT:
            raise InvalidInput(N_("The expected-loss ceiling must be between 0 %% and 100 %%."))
        return self


def _flag(value: object) -> bool:
    return value in (True, "on", "true", "1", "yes")


# (raw value, what it is for the message) -> the number; each raises InvalidInput with a sentence.
Parser = Callable[[object, Message], int]


def rules_from(fields: Mapping[str, object], parse_sat: Parser, parse_percent_bps: Parser, parse_whole: Parser) -> Rules:
    """Rules from a form or JSON object (the parsers are the web layer's one set of number rules)."""
    def pick(name: str, allowed: tuple[str, ...]) -> frozenset[str]:
        raw = fields.get(name)
        values = raw if isinstance(raw, (list, tuple)) else ([] if raw in (None, "") else str(raw).split(","))
        chosen = frozenset(str(v).strip() for v in values if str(v).strip())
        unknown = sorted(chosen - set(allowed))
        if unknown:
            shown = repr(unknown[0][:20])
            said = {"grades": N_("Unknown grade: %(value)s.", value=shown),
                    "frequencies": N_("Unknown frequency: %(value)s.", value=shown),
                    "purposes": N_("Unknown purpose: %(value)s.", value=shown)}
            raise InvalidInput(said.get(name) or N_("Unknown value: %(value)s.", value=shown))
        return chosen

    return Rules(
        enabled=_flag(fields.get("enabled")),
        budget_msat=parse_sat(fields.get("budget_sat"), N_("budget")),
        note_msat=parse_sat(fields.get("note_sat"), N_("note size")),
        max_per_loan_msat=parse_sat(fields.get("max_per_loan_sat"), N_("most per loan")),
        max_per_loan_bps=parse_percent_bps(fields.get("max_per_loan_percent"), N_("most per loan (share)")),
        max_per_borrower_msat=parse_sat(fields.get("max_per_borrower_sat"), N_("most per borrower")),
        grades=pick("grades", GRADES),
        frequencies=pick("frequencies", tuple(f.value for f in Frequency)),
        purposes=pick("purposes", PURPOSES),
        max_term_days=parse_whole(fields.get("max_term_days"), N_("longest term")),
        min_rate_bps=parse_percent_bps(fields.get("min_rate_percent"), N_("lowest rate")),
        max_expected_loss_bps=parse_percent_bps(fields.get("max_expected_loss_percent"), N_("expected-loss ceiling")),
        reinvest=_flag(fields.get("reinvest")),
    )


def unit_msat(note_min_sat: int) -> int:
    """The marketplace's auto-invest unit: the smallest note."""
    return note_min_sat * MSAT_PER_SAT


def note_size(rules: Rules, account_value_msat: int, unit: int) -> int:
    """The note auto-invest buys for a lender: its note size within its per-loan limits (an amount and a share
    of the account's value), in whole units of the smallest note (0 when the limits are below one)."""
    most = min(rules.note_msat, rules.max_per_loan_msat, account_value_msat * rules.max_per_loan_bps // BPS_PER_UNIT)
    return max(most, 0) // unit * unit


def nothing_to_buy(rules: Rules, available_msat: int, held_msat: int, note_msat: int, unit: int) -> Message | None:
    """Why auto-invest would buy nothing whatever requests match, or None: it buys whole notes of `note_msat`
    (``note_size``), and what it may still put in (the budget less what is held, or the money available) is
    below one, or the per-loan limits make a note smaller than the smallest."""
    if not rules.enabled:
        return None
    if note_msat < unit:
        return N_("Your most per loan makes a note smaller than the smallest one (%(unit)s): auto-invest will buy "
                  "nothing until you raise it.", unit=format_msat(unit))
    room = max(0, min(available_msat, rules.budget_msat - held_msat))
    if room >= note_msat:
        return None
    return N_("Auto-invest can put in %(room)s more, less than one of your notes (%(note)s): it will buy nothing "
              "until you raise the budget or deposit more.", room=format_msat(room), note=format_msat(note_msat))
