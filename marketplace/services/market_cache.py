"""The market list, queried once per change of the market and shared by every visitor of this process.

Every lender sees the same rows for the same filters; only a few bits of the
page are theirs (the CSRF token, the fund-row form keys). So a page of the
list is kept here, keyed by its spec, and reused while two things hold:

- the market's version is the one it was read at. The version is one row,
  `market_state`, bumped in the same transaction as any insert, update or
  delete of a loan that is or was taking pledges (database triggers, migration
  0011), so a pledge, a new request, a cancel, funding or an expiry by the
  daily job all change it, from whichever process made them;
- the clock has not reached the next funding deadline among the open requests:
  a request leaves the list at its deadline without any write.

The version is read before the rows, so a change committed between the two
reads leaves a newer page under an older version, which only costs a refresh.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Connection, func, select

from marketplace.db.tables import loans, market_state
from marketplace.services import marketplace_list as market

CACHE_ENTRIES = 2_048  # a page is a few KB: a few MB per process at most


@dataclass(frozen=True)
class CachedPage:
    page: market.MarketPage
    tag: str  # the version and the next deadline: part of the page's ETag
    version: int
    valid_until: datetime | None
    # The page's HTML by (language, view) with per-visitor slots, filled by the web layer on first use: the
    # rows are the same for every visitor, so they are rendered once per version, not once per request.
    rendered: dict[tuple[str, ...], str] = field(default_factory=dict, compare=False, repr=False)


def market_version(conn: Connection) -> int:
    return int(conn.execute(select(market_state.c.version).where(market_state.c.id == 1)).scalar_one())


def next_deadline(conn: Connection, moment: datetime) -> datetime | None:
    """The first moment after `moment` at which an open request leaves the list by itself."""
    found: datetime | None = conn.execute(select(func.min(loans.c.funding_deadline)).where(
        loans.c.status == "funding", loans.c.funding_deadline > moment)).scalar()
    if found is None:
        return None
    # SQLite hands back naive datetimes (stored as UTC text).
    return found if found.tzinfo else found.replace(tzinfo=timezone.utc)


class MarketCache:
    """Pages of the market list by spec; thread-safe (handlers read it from the thread pool)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries: OrderedDict[market.MarketSpec, CachedPage] = OrderedDict()
        self._size = entries
        self._lock = threading.Lock()
        self._version = 0  # the newest version seen; versions only grow
        self._totals: dict[market.MarketSpec, tuple[int, datetime | None]] = {}  # by filters_of(spec)
        self.hits = 0
        self.misses = 0

    def page(self, conn: Connection, spec: market.MarketSpec, now: datetime | None = None) -> CachedPage:
        moment = now or datetime.now(timezone.utc)
        version = market_version(conn)
        with self._lock:
            entry = self._entries.get(spec)
            if entry is not None and entry.version == version and (
                    entry.valid_until is None or moment < entry.valid_until):
                self._entries.move_to_end(spec)
                self.hits += 1
                return entry
        filters = market.filters_of(spec)
        with self._lock:
            counted = self._totals.get(filters) if self._version == version else None
        # The count is the dearest part of a page and the same for every sort and page of one filter.
        total = counted[0] if counted is not None and (counted[1] is None or moment < counted[1]) else None
        found = market.market_page(conn, spec, moment, total)
        until = next_deadline(conn, moment)
        tag = f"{version}-{'' if until is None else int(until.timestamp() * 1_000_000)}"
        entry = CachedPage(found, tag, version, until)
        with self._lock:
            self.misses += 1
            if version > self._version:
                self._entries.clear()  # the market changed: every older page is stale
                self._totals.clear()
                self._version = version
            elif version < self._version:
                return entry  # read before a change another thread has already seen: do not keep it
            self._entries[spec] = entry
            self._entries.move_to_end(spec)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
            if len(self._totals) >= self._size:
                self._totals.clear()
            self._totals[filters] = (found.total, until)
        return entry
