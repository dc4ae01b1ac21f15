"""Numbers, amounts, dates and times as a reader of the page's language expects them (Babel).

Amounts people read are whole sats, as a wallet shows them. The rounding rule:

* what someone must pay (an installment due, a payoff, a repayment invoice) is rounded UP to
  the whole sat (`owed`), so paying the amount shown always settles it;
* everything else (a balance, what was received or earned, a risk figure) is rounded DOWN
  (`sat`), so nobody is shown money they do not have.

Millisatoshis are shown only where exactness is the point (`msat_exact`: the statement,
a receipt's detail); the API keeps integer msat.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from babel import dates as babel_dates
from babel import numbers as babel_numbers

from marketplace.domain.money import MSAT_PER_SAT
from marketplace.domain.messages import N_, ngettext
from marketplace.web.i18n import current_language, say


def _locale() -> str:
    return current_language()


def number(value: int | float, digits: int = 0) -> str:
    """12345 -> '12,345' (en) or '12.345' (es); `digits` fixed decimals."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return babel_numbers.format_decimal(value, format=pattern, locale=_locale())


def sat_down(amount_msat: int) -> int:
    """Whole sats, rounded toward zero (what someone has or received)."""
    whole = abs(amount_msat) // MSAT_PER_SAT
    return -whole if amount_msat < 0 else whole


def sat_up(amount_msat: int) -> int:
    """Whole sats, rounded away from zero (what someone must pay: paying it always settles it)."""
    whole = -(-abs(amount_msat) // MSAT_PER_SAT)
    return -whole if amount_msat < 0 else whole


def sat(amount_msat: int) -> str:
    """'1,234 sat' in the reader's language; fractions of a sat dropped (rounded down)."""
    return f"{number(sat_down(amount_msat))} sat"


def owed(amount_msat: int) -> str:
    """An amount to pay, '1,235 sat': rounded up, so paying what is shown settles it."""
    return f"{number(sat_up(amount_msat))} sat"


def msat_exact(amount_msat: int) -> str:
    """'1,234.567 sat' to the millisatoshi (statement, receipt detail), in the reader's number format."""
    if amount_msat % MSAT_PER_SAT == 0:
        return sat(amount_msat)
    return f"{number(amount_msat / MSAT_PER_SAT, 3)} sat"


def percent_bps(bps: int) -> str:
    """1850 -> '18.5 %' / '18,5 %'; whole numbers without decimals."""
    value = bps / 100
    digits = 0 if bps % 100 == 0 else (1 if bps % 10 == 0 else 2)
    return f"{number(value, digits)} %"


def percent_ppm(ppm: int) -> str:
    """12_345 ppm -> '1.23 %' (two decimals)."""
    return f"{number(round(ppm / 10_000, 2), 2)} %"


def day(value: date | datetime) -> str:
    """'6 Dec 2026' / '6 dic 2026'."""
    return babel_dates.format_date(value, format="medium", locale=_locale())


def moment(value: datetime) -> str:
    """'6 Dec 2026, 14:05 UTC' (UTC, stated, so nobody guesses the zone)."""
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = babel_dates.format_datetime(aware.astimezone(timezone.utc), format="d MMM y, HH:mm",
                                       tzinfo=timezone.utc, locale=_locale())
    return f"{text} UTC"


def time_left(deadline: datetime, now: datetime | None = None) -> str:
    """'13 days left' (whole days), '5 hours left' on the last day, 'closed' once it has passed."""
    current = now or datetime.now(timezone.utc)
    aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)
    seconds = int((aware - current).total_seconds())
    if seconds <= 0:
        return say(N_("closed"))
    if seconds >= 86_400:
        days = seconds // 86_400
        return say(ngettext("%(num)s day left", "%(num)s days left", days, num=number(days)))
    if seconds >= 3_600:
        hours = seconds // 3_600
        return say(ngettext("%(num)s hour left", "%(num)s hours left", hours, num=number(hours)))
    minutes = max(1, seconds // 60)
    return say(ngettext("%(num)s minute left", "%(num)s minutes left", minutes, num=number(minutes)))


def days_until(when: date, today: date) -> str:
    """'today', 'tomorrow', 'in 3 days', '2 days ago' for a due date."""
    days = (when - today).days
    if days == 0:
        return say(N_("today"))
    if days == 1:
        return say(N_("tomorrow"))
    if days > 1:
        return say(ngettext("in %(num)s day", "in %(num)s days", days, num=number(days)))
    return say(ngettext("%(num)s day ago", "%(num)s days ago", -days, num=number(-days)))


FILTERS = {"sat": sat, "owed": owed, "msat_exact": msat_exact, "number": number, "day": day, "moment": moment,
           "bps": percent_bps, "ppm_pct": percent_ppm}
GLOBALS = {"time_left": time_left, "days_until": days_until, "sat_down": sat_down, "sat_up": sat_up}
