"""The lenders' marketplace list: a filter/sort spec parsed from query parameters, and its SQL query.

`parse_market(items)` is pure: it turns query-string pairs into a `MarketSpec`
or raises `InvalidInput` with a sentence that names the field. `market_page`
runs the spec as one filtered, sorted, paged SELECT (plus one COUNT) over the
requests still taking pledges: status 'funding' and the deadline not passed.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Boolean, ColumnElement, Connection, func, literal_column, or_, select

from marketplace.db.loans import LOAN_COLUMNS, LoanRow, loan_from
from marketplace.db.tables import FUNDED_RATIO, loans as loans_table
from marketplace.domain import numbers
from marketplace.domain.errors import InvalidInput
from marketplace.domain.loans.schedules import Frequency
from marketplace.domain.loans.terms import PURPOSES
from marketplace.domain.money import MSAT_PER_SAT
from marketplace.domain.messages import Message, N_

GRADES = ("A", "B", "C", "D", "E")
FREQUENCIES = tuple(f.value for f in Frequency)
# sort name -> its natural direction ("desc": highest rate, most funded, newest first; soonest deadline first).
SORTS = {"newest": "desc", "rate": "desc", "time_left": "asc", "funded": "desc"}
DIRECTIONS = ("asc", "desc")
PAGE_SIZE = 10  # about 1 KB of HTML a row: light on a slow phone
PAGE_SIZE_MAX = 50
PAGE_MAX = 10_000
RATE_MAX_PERCENT = Decimal(100)
TERM_MAX = 10_000
LEFT_MAX_SAT = 21_000_000 * 100_000_000
VALUE_LENGTH_MAX = 32
KNOWN = ("grade", "rate_min", "rate_max", "term_min", "term_max", "frequency", "purpose", "left_min",
         "sort", "dir", "page", "size", "after")
CURSOR_MAX = 48  # a float's repr (up to 24), '_', an id (up to 19)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
BAD_CURSOR = N_("This page link is not one the list made; start again from the first page.")


@dataclass(frozen=True)
class MarketSpec:
    grades: tuple[str, ...] = ()
    rate_min_bps: int | None = None
    rate_max_bps: int | None = None
    term_min: int | None = None
    term_max: int | None = None
    frequency: str | None = None
    purpose: str | None = None
    left_min_msat: int | None = None
    sort: str = "newest"
    direction: str = "desc"
    page: int = 1
    size: int = PAGE_SIZE
    # Keyset paging: the sort key and id of the last row of the page before (`cursor_of`); with it the
    # query starts right after that row through the sort's index instead of counting past `offset` rows.
    # `page` still says which page it is, for the "page n of m" line.
    after: str | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query-string pairs that give this spec back (defaults left out), after `changes`."""
        spec = replace(self, **changes)
        pairs: list[tuple[str, str]] = [("grade", g) for g in spec.grades]
        if spec.rate_min_bps is not None:
            pairs.append(("rate_min", _bps_text(spec.rate_min_bps)))
        if spec.rate_max_bps is not None:
            pairs.append(("rate_max", _bps_text(spec.rate_max_bps)))
        for name in ("term_min", "term_max", "frequency", "purpose"):
            value = getattr(spec, name)
            if value is not None:
                pairs.append((name, str(value)))
        if spec.left_min_msat is not None:
            pairs.append(("left_min", str(spec.left_min_msat // MSAT_PER_SAT)))
        if spec.sort != "newest":
            pairs.append(("sort", spec.sort))
        if spec.direction != SORTS[spec.sort]:
            pairs.append(("dir", spec.direction))
        if spec.size != PAGE_SIZE:
            pairs.append(("size", str(spec.size)))
        if spec.page != 1:
            pairs.append(("page", str(spec.page)))
        if spec.after is not None:
            pairs.append(("after", spec.after))
        return pairs

    def query(self, **changes: Any) -> str:
        """'?grade=A&sort=rate' (or '' when everything is a default)."""
        pairs = self.params(**changes)
        return "?" + urlencode(pairs) if pairs else ""

    def sorted_by(self, sort: str) -> str:
        """The link for a sort header: its natural direction first, the other one when it is already on."""
        if sort == self.sort:
            flipped = "asc" if self.direction == "desc" else "desc"
            return self.query(sort=sort, direction=flipped, page=1, after=None)
        return self.query(sort=sort, direction=SORTS[sort], page=1, after=None)

    def echo(self) -> dict[str, str]:
        """The form fields' values, as typed back."""
        return {"rate_min": "" if self.rate_min_bps is None else _bps_text(self.rate_min_bps),
                "rate_max": "" if self.rate_max_bps is None else _bps_text(self.rate_max_bps),
                "term_min": "" if self.term_min is None else str(self.term_min),
                "term_max": "" if self.term_max is None else str(self.term_max),
                "frequency": self.frequency or "", "purpose": self.purpose or "",
                "left_min": "" if self.left_min_msat is None else str(self.left_min_msat // MSAT_PER_SAT),
                "sort": self.sort, "dir": self.direction}


def _bps_text(bps: int) -> str:
    whole, rest = divmod(bps, 100)
    return str(whole) if not rest else f"{whole}.{rest:02d}".rstrip("0")


def _percent_bps(raw: str, label: Message) -> int:
    value = numbers.decimal(raw, label=label, places=2, maximum=RATE_MAX_PERCENT,
                            not_number=N_("The %(label)s must be a number of percent, like 12 or 12.5.", label=label),
                            out_of_range=N_("The %(label)s must be between 0 and %(most)s %%.", label=label,
                                            most=str(RATE_MAX_PERCENT)))
    return numbers.scaled(value, 2, label=label)


def _whole(raw: str, label: Message, low: int, high: int) -> int:
    return numbers.whole(raw, label=label, minimum=low, maximum=high, grouping=True)


def parse_market(items: Iterable[tuple[str, str]]) -> MarketSpec:
    """A spec from query-string pairs; every bad value is an InvalidInput naming the field.

    Empty values mean "no filter" (an untouched form field); unknown names are ignored.
    """
    values: dict[str, str] = {}
    grades: list[str] = []
    for name, raw in items:
        if name not in KNOWN:
            continue
        if len(raw) > (CURSOR_MAX if name == "after" else VALUE_LENGTH_MAX):
            raise InvalidInput(BAD_CURSOR if name == "after" else N_("The value for %(name)s is too long.", name=name))
        value = raw.strip()
        if name == "grade":
            if not value:
                continue
            grade = value.upper()
            if grade not in GRADES:
                raise InvalidInput(N_("A grade must be one of A, B, C, D or E."))
            if grade not in grades:
                grades.append(grade)
        elif name in values:
            raise InvalidInput(N_("Give %(name)s only once.", name=name))
        else:
            values[name] = value

    def given(name: str) -> str | None:
        value = values.get(name, "")
        return value or None

    rate_min = given("rate_min")
    rate_max = given("rate_max")
    spec_rate_min = _percent_bps(rate_min, N_("lowest rate")) if rate_min else None
    spec_rate_max = _percent_bps(rate_max, N_("highest rate")) if rate_max else None
    if spec_rate_min is not None and spec_rate_max is not None and spec_rate_min > spec_rate_max:
        raise InvalidInput(N_("The lowest rate is above the highest rate."))
    term_min_raw = given("term_min")
    term_max_raw = given("term_max")
    term_min = _whole(term_min_raw, N_("fewest installments"), 1, TERM_MAX) if term_min_raw else None
    term_max = _whole(term_max_raw, N_("most installments"), 1, TERM_MAX) if term_max_raw else None
    if term_min is not None and term_max is not None and term_min > term_max:
        raise InvalidInput(N_("The fewest installments is above the most installments."))
    frequency = given("frequency")
    if frequency is not None and frequency not in FREQUENCIES:
        raise InvalidInput(N_("The frequency must be daily, weekly or monthly."))
    purpose = given("purpose")
    if purpose is not None and purpose not in PURPOSES:
        raise InvalidInput(N_("The purpose must be one of: %(purposes)s.", purposes=", ".join(PURPOSES)))
    left_raw = given("left_min")
    left_min = _whole(left_raw, N_("amount left to fund"), 1, LEFT_MAX_SAT) * MSAT_PER_SAT if left_raw else None
    sort = given("sort") or "newest"
    if sort not in SORTS:
        raise InvalidInput(N_("Sort by rate, time_left, funded or newest."))
    direction = given("dir") or SORTS[sort]
    if direction not in DIRECTIONS:
        raise InvalidInput(N_("The sort direction must be asc or desc."))
    page_raw = given("page")
    page = _whole(page_raw, N_("page number"), 1, PAGE_MAX) if page_raw else 1
    size_raw = given("size")
    size = _whole(size_raw, N_("page size"), 1, PAGE_SIZE_MAX) if size_raw else PAGE_SIZE
    after = given("after")
    if after is not None:
        if page == 1:
            raise InvalidInput(BAD_CURSOR)  # the first page starts at the top; a cursor comes with a later page
        parse_cursor(sort, after)
    return MarketSpec(tuple(grades), spec_rate_min, spec_rate_max, term_min, term_max, frequency, purpose,
                      left_min, sort, direction, page, size, after)


# --- keyset cursors: "<sort key>_<id>" ("<id>" for newest), plain text a person can read ----------------


def cursor_of(sort: str, loan: LoanRow) -> str:
    if sort == "newest":
        return str(loan.id)
    if sort == "rate":
        key = str(loan.annual_rate_bps)
    elif sort == "time_left":
        key = str((loan.funding_deadline - _EPOCH) // timedelta(microseconds=1))
    else:  # funded: the very float the query orders by (repr round-trips exactly)
        key = repr(float(loan.funded_msat) / float(loan.amount_msat))
    return f"{key}_{loan.id}"


def parse_cursor(sort: str, text: str) -> tuple[int | float | datetime | None, int]:
    """(sort key, id) from a cursor; InvalidInput when it is not one `cursor_of` could have made."""
    if len(text) > CURSOR_MAX:
        raise InvalidInput(BAD_CURSOR)
    key_text, _, id_text = text.rpartition("_")
    if (sort == "newest") != (key_text == ""):
        raise InvalidInput(BAD_CURSOR)
    try:
        # The id and the whole-number keys by the one set of number rules (ASCII digits only).
        loan_id = numbers.whole(id_text, label="cursor", minimum=1, maximum=2**63 - 1)
        if sort == "newest":
            return None, loan_id
        if sort == "rate":
            return numbers.whole(key_text, label="cursor", minimum=0, maximum=10**6), loan_id
        if sort == "time_left":
            micros = numbers.whole(key_text, label="cursor", minimum=0, maximum=10**17)
            return _EPOCH + timedelta(microseconds=micros), loan_id
        # The funded ratio is a float's repr: ASCII only (float() would also read other scripts' digits).
        ratio = float(key_text) if key_text.isascii() else -1.0
    except (InvalidInput, ValueError, OverflowError):
        raise InvalidInput(BAD_CURSOR) from None
    if not 0.0 <= ratio <= 1.0:
        raise InvalidInput(BAD_CURSOR)
    return ratio, loan_id


# --- the query ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketRow:
    loan: LoanRow
    funded_pct: int  # rounded down to 5 %, for the bar

    @property
    def left_msat(self) -> int:
        return self.loan.remaining_msat


@dataclass(frozen=True)
class MarketPage:
    rows: tuple[MarketRow, ...]
    total: int
    spec: MarketSpec

    @property
    def next_after(self) -> str:
        """The cursor that starts the next page."""
        return cursor_of(self.spec.sort, self.rows[-1].loan)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.spec.size))

    @property
    def has_more(self) -> bool:
        return self.spec.page < self.pages


def _conditions(spec: MarketSpec, moment: datetime, sqlite: bool = False) -> list[ColumnElement[bool]]:
    c = loans_table.c
    open_still: ColumnElement[bool] = c.funding_deadline > moment
    if sqlite and spec.sort != "time_left":
        # Nearly every request taking pledges is before its deadline; without this hint (and without
        # ANALYZE statistics) SQLite takes the deadline range for a filter and sorts the whole list, instead
        # of walking the sort's own index and stopping after one page.
        open_still = func.likelihood(open_still, literal_column("0.9375"), type_=Boolean)
    where: list[ColumnElement[bool]] = [c.status == "funding", open_still]
    if spec.grades:
        where.append(c.grade.in_(spec.grades))
    if spec.rate_min_bps is not None:
        where.append(c.annual_rate_bps >= spec.rate_min_bps)
    if spec.rate_max_bps is not None:
        where.append(c.annual_rate_bps <= spec.rate_max_bps)
    if spec.term_min is not None:
        where.append(c.term_count >= spec.term_min)
    if spec.term_max is not None:
        where.append(c.term_count <= spec.term_max)
    if spec.frequency is not None:
        where.append(c.frequency == spec.frequency)
    if spec.purpose is not None:
        where.append(c.purpose == spec.purpose)
    if spec.left_min_msat is not None:
        where.append(c.amount_msat - c.funded_msat >= spec.left_min_msat)
    return where


def _after(spec: MarketSpec) -> list[ColumnElement[bool]]:
    """Rows after the cursor in the page order (key in its direction, then id descending; newest: id)."""
    if spec.after is None:
        return []
    key_value, last_id = parse_cursor(spec.sort, spec.after)
    c = loans_table.c
    if spec.sort == "newest":
        return [c.id < last_id if spec.direction == "desc" else c.id > last_id]
    key: Any = _SORT_KEYS[spec.sort]
    if spec.direction == "desc":
        # The plain bound lets the index range start at the cursor; the OR breaks the tie by id.
        return [key <= key_value, or_(key < key_value, c.id < last_id)]
    return [key >= key_value, or_(key > key_value, c.id < last_id)]


_SORT_KEYS: dict[str, Any] = {
    "newest": loans_table.c.id,
    "rate": loans_table.c.annual_rate_bps,
    "time_left": loans_table.c.funding_deadline,
    "funded": FUNDED_RATIO,  # spelt as its index is
}


def _order(spec: MarketSpec) -> list[Any]:
    c = loans_table.c
    key: Any = _SORT_KEYS[spec.sort]
    first = key.desc() if spec.direction == "desc" else key.asc()
    # A stable order across pages: ties go newest first.
    return [first] if spec.sort == "newest" else [first, c.id.desc()]


def _pct(part: int, whole: int) -> int:
    if whole <= 0:
        return 0
    pct = max(0, min(100, part * 100 // whole))
    return pct - pct % 5


def filters_of(spec: MarketSpec) -> MarketSpec:
    """The spec without its order and place: what the number of matches depends on."""
    return replace(spec, sort="newest", direction="desc", page=1, size=PAGE_SIZE, after=None)


def market_page(conn: Connection, spec: MarketSpec, now: datetime | None = None,
                total: int | None = None) -> MarketPage:
    """One page of the open requests that match `spec`, and how many match in all (unless `total` says)."""
    moment = now or datetime.now(timezone.utc)
    where = _conditions(spec, moment, sqlite=conn.dialect.name == "sqlite")
    if total is None:
        total = int(conn.execute(select(func.count()).select_from(loans_table)
                                 .where(*_conditions(spec, moment))).scalar_one())
    query = select(*LOAN_COLUMNS).where(*where, *_after(spec)).order_by(*_order(spec)).limit(spec.size)
    rows = conn.execute(query if spec.after is not None else query.offset(spec.offset)).all()
    found = [loan_from(r) for r in rows]
    return MarketPage(tuple(MarketRow(loan, _pct(loan.funded_msat, loan.amount_msat)) for loan in found),
                      total, spec)
