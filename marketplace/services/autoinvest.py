"""Auto-invest: lenders' rules, the trigger queue, and the engine run that buys notes for all of them at once.

A run happens in the background (the worker-lock holder polls the queue),
never inside the request that triggered it: a listed request, changed rules,
a deposit or repayments arriving each add a row to `autoinvest_queue`, and
the next run takes every pending row. A run

1. plans, in one transaction: every enabled lender's room (their budget less
   what auto-invest already holds for them, at most their available balance),
   every open request's unfunded notes, the eligible pairs by each lender's
   rules, and one min-cost flow over all of them (portfolio/allocation.py:
   whole notes, every cap respected, as many notes placed as the rules allow,
   the lender with the most idle cash first, one note per loan per lender).
   The plan is stored as orders;
2. buys, order by order, through the same pledge service and ledger as a note
   bought by hand, each with the order's id as its idempotency key: a run cut
   short by a crash is resumed by the next one and buys nothing twice. An
   order the marketplace no longer allows (the request filled up meanwhile,
   the money was withdrawn) is refused with the reason and skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from sqlalchemy import Connection, case, delete, func, insert, select, update

from marketplace.db import ledger
from marketplace.db.autoinvest import enqueue, prune
from marketplace.db.engine import Database
from marketplace.db.tables import (
    autoinvest_rule_changes,
    accounts,
    autoinvest_orders,
    autoinvest_queue,
    autoinvest_rules,
    autoinvest_runs,
    loans,
    notes,
)
from marketplace.domain.autoinvest import GRADES, Rules, note_size, nothing_to_buy, unit_msat
from marketplace.domain.errors import InvalidInput, Refusal, TooManyAttempts
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.calendar import Frequency
from marketplace.domain.loans.terms import PURPOSES
from marketplace.domain.money import format_msat
from marketplace.settings import Settings
from marketplace.payments.faults import crash_at
from portfolio.allocation import Allocator, eligible_pairs, whole_notes
from portfolio.pd import LGD_DEFAULT
from marketplace.domain.messages import Message, N_
from marketplace.domain.throttling import retry_after, wait_message

FREQUENCIES = tuple(f.value for f in Frequency)
DAYS_PER_PERIOD = {"daily": 1, "weekly": 7, "monthly": 30}
PPM = 1_000_000


# --- rules ----------------------------------------------------------------------------------------------------


def _row_to_rules(r: object) -> Rules:
    return Rules(
        enabled=bool(getattr(r, "enabled")), budget_msat=int(getattr(r, "budget_msat")),
        note_msat=int(getattr(r, "note_msat")), max_per_loan_msat=int(getattr(r, "max_per_loan_msat")),
        max_per_loan_bps=int(getattr(r, "max_per_loan_bps")),
        max_per_borrower_msat=int(getattr(r, "max_per_borrower_msat")),
        grades=frozenset(str(getattr(r, "grades")).split(",")) - {""},
        frequencies=frozenset(str(getattr(r, "frequencies")).split(",")) - {""},
        purposes=frozenset(str(getattr(r, "purposes")).split(",")) - {""},
        max_term_days=int(getattr(r, "max_term_days")), min_rate_bps=int(getattr(r, "min_rate_bps")),
        max_expected_loss_bps=int(getattr(r, "max_expected_loss_bps")), reinvest=bool(getattr(r, "reinvest")))


def rules_of(conn: Connection, lender_id: int) -> Rules | None:
    found = conn.execute(select(autoinvest_rules).where(autoinvest_rules.c.lender_id == lender_id)).one_or_none()
    return None if found is None else _row_to_rules(found)


def held_by_autoinvest(conn: Connection, lender_ids: list[int], reinvest: dict[int, bool]) -> dict[int, int]:
    """What auto-invest holds for each lender: what its notes still have at stake (with reinvest: repaid
    principal frees room), or everything it ever put in (without: the budget is spent once)."""
    at_stake = case((notes.c.status == "pledged", notes.c.amount_msat),
                    (notes.c.status == "active", notes.c.principal_outstanding_msat), else_=0)
    ever = case((notes.c.status != "released", notes.c.amount_msat), else_=0)
    rows = conn.execute(select(notes.c.lender_id, func.sum(at_stake), func.sum(ever))
                        .where(notes.c.lender_id.in_(lender_ids), notes.c.autoinvest_order_id.is_not(None))
                        .group_by(notes.c.lender_id))
    found = {int(r[0]): (int(r[1] or 0), int(r[2] or 0)) for r in rows}
    return {i: found.get(i, (0, 0))[0 if reinvest.get(i, True) else 1] for i in lender_ids}


def save_rules(database: Database, settings: Settings, lender_id: int, rules: Rules) -> Rules:
    """Store a lender's rules (checked) and ask for a run; a budget beyond what they have is refused."""
    rules.check(unit_msat(settings.note_min_sat))

    def work(conn: Connection) -> Rules:
        _count_change(conn, settings, lender_id, datetime.now(timezone.utc))
        available = ledger.user_balances(conn, lender_id)[AccountKind.USER_AVAILABLE]
        held = held_by_autoinvest(conn, [lender_id], {lender_id: rules.reinvest})[lender_id]
        if rules.budget_msat > available + held:
            raise InvalidInput(N_(
                "A budget of %(budget)s is more than the %(total)s you have to invest (%(available)s available "
                "plus %(held)s already in auto-invest notes). Deposit more or lower the budget.",
                budget=format_msat(rules.budget_msat), total=format_msat(available + held),
                available=format_msat(available), held=format_msat(held)))
        values = {
            "enabled": rules.enabled, "budget_msat": rules.budget_msat, "note_msat": rules.note_msat,
            "max_per_loan_msat": rules.max_per_loan_msat, "max_per_loan_bps": rules.max_per_loan_bps,
            "max_per_borrower_msat": rules.max_per_borrower_msat, "grades": ",".join(sorted(rules.grades)),
            "frequencies": ",".join(sorted(rules.frequencies)), "purposes": ",".join(sorted(rules.purposes)),
            "max_term_days": rules.max_term_days, "min_rate_bps": rules.min_rate_bps,
            "max_expected_loss_bps": rules.max_expected_loss_bps, "reinvest": rules.reinvest,
            "updated_at": datetime.now(timezone.utc),
        }
        changed = conn.execute(update(autoinvest_rules).where(autoinvest_rules.c.lender_id == lender_id)
                               .values(**values)).rowcount
        if not changed:
            conn.execute(insert(autoinvest_rules).values(lender_id=lender_id, **values))
        enqueue(conn, "rules", lender_id=lender_id)
        return rules

    return database.run(work)


class TooManyRuleChanges(TooManyAttempts):
    """429: the lender saved their rules too often lately; `retry_after_s` says how long to wait."""

    code = "too_many_rule_changes"

    def __init__(self, message: str | Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _count_change(conn: Connection, settings: Settings, lender_id: int, now: datetime) -> None:
    """Refuse a save past `autoinvest_changes_per_window` in the window; else count it (old counts pruned).

    The lender's rules row is locked first (PostgreSQL), so parallel saves cannot all pass one count. A save
    that is refused later on (a budget too large) rolls its count back with it."""
    conn.execute(select(autoinvest_rules.c.lender_id).where(autoinvest_rules.c.lender_id == lender_id)
                 .with_for_update()).first()
    window = timedelta(seconds=settings.autoinvest_changes_window_s)
    changes = autoinvest_rule_changes.c
    conn.execute(delete(autoinvest_rule_changes).where(changes.lender_id == lender_id, changes.at <= now - window))
    times = [at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc) for at in conn.execute(
        select(changes.at).where(changes.lender_id == lender_id)).scalars()]
    wait = retry_after(times, settings.autoinvest_changes_per_window, window, now)
    if wait is not None:
        raise TooManyRuleChanges(N_("You changed your auto-invest rules %(count)s times lately, the most allowed. "
                                    "Try again %(wait)s.", count=settings.autoinvest_changes_per_window,
                                    wait=wait_message(wait)), int(-(-wait.total_seconds() // 1)))
    conn.execute(insert(autoinvest_rule_changes).values(lender_id=lender_id, at=now))


@dataclass(frozen=True)
class AutoInvestView:
    """A lender's auto-invest page (and API answer): the stored rules, what they match, the latest orders."""

    rules: Rules | None
    available_msat: int
    held_msat: int
    matching: int
    orders: list[Any]
    # Why nothing would be bought whatever matches (a budget below one note, ...); None: nothing stops it.
    nothing_to_buy: Message | None = None


def current_rules(database: Database, lender_id: int) -> Rules | None:
    return database.read(lambda c: rules_of(c, lender_id))


def autoinvest_view(database: Database, settings: Settings, lender_id: int, *, orders: bool = True) -> AutoInvestView:
    """The lender's rules (None: never saved) and, for them (or the defaults), what they match now."""
    def read(conn: Connection) -> AutoInvestView:
        rules = rules_of(conn, lender_id)
        effective = rules or Rules()
        held = held_by_autoinvest(conn, [lender_id], {lender_id: effective.reinvest})[lender_id]
        return AutoInvestView(
            rules, ledger.user_balances(conn, lender_id)[AccountKind.USER_AVAILABLE], held,
            matching_requests(conn, settings, effective), _recent_orders(conn, lender_id) if orders else [],
            nothing_to_buy_of(conn, settings, lender_id, effective, held))

    return database.read(read)


def _recent_orders(conn: Connection, lender_id: int) -> list[Any]:
    return list(conn.execute(
        select(autoinvest_orders.c.run_id, autoinvest_orders.c.loan_id, autoinvest_orders.c.amount_msat,
               autoinvest_orders.c.status, autoinvest_orders.c.error, loans.c.grade, loans.c.purpose)
        .select_from(autoinvest_orders.join(loans, loans.c.id == autoinvest_orders.c.loan_id))
        .where(autoinvest_orders.c.lender_id == lender_id)
        .order_by(autoinvest_orders.c.id.desc()).limit(20)).all())


# --- what the rules allow right now ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenLoans:
    ids: np.ndarray
    borrower: np.ndarray
    grade: np.ndarray
    frequency: np.ndarray
    purpose: np.ndarray
    term_days: np.ndarray
    rate_bps: np.ndarray
    remaining_notes: np.ndarray
    el_rate: np.ndarray
    age_order: np.ndarray


def open_loans(conn: Connection, unit: int, now: datetime) -> OpenLoans:
    rows = conn.execute(select(loans.c.id, loans.c.borrower_id, loans.c.grade, loans.c.frequency, loans.c.purpose,
                               loans.c.term_count, loans.c.annual_rate_bps, loans.c.amount_msat,
                               loans.c.funded_msat, loans.c.pd_ppm)
                        .where(loans.c.status == "funding", loans.c.funding_deadline > now)
                        .order_by(loans.c.id)).all()
    rows = [r for r in rows if (r.amount_msat - r.funded_msat) >= unit]
    n = len(rows)

    def col(values: list[int]) -> np.ndarray:
        return np.asarray(values, dtype=np.int64).reshape(n)

    return OpenLoans(
        ids=col([r.id for r in rows]), borrower=col([r.borrower_id for r in rows]),
        grade=col([GRADES.index(r.grade) for r in rows]), frequency=col([FREQUENCIES.index(r.frequency) for r in rows]),
        purpose=col([PURPOSES.index(r.purpose) if r.purpose in PURPOSES else 0 for r in rows]),
        term_days=col([r.term_count * DAYS_PER_PERIOD[r.frequency] for r in rows]),
        rate_bps=col([r.annual_rate_bps for r in rows]),
        remaining_notes=col([(r.amount_msat - r.funded_msat) // unit for r in rows]),
        el_rate=np.asarray([r.pd_ppm / PPM * LGD_DEFAULT for r in rows], dtype=np.float64).reshape(n),
        age_order=np.minimum(np.arange(n, dtype=np.int64) * 100 // max(n, 1), 100))


def _mask(chosen: frozenset[str], names: tuple[str, ...]) -> int:
    return sum(1 << i for i, name in enumerate(names) if name in chosen)


def matching_requests(conn: Connection, settings: Settings, rules: Rules, now: datetime | None = None) -> int:
    """How many open requests these rules would consider now (for the rules page)."""
    unit = unit_msat(settings.note_min_sat)
    found = open_loans(conn, unit, now or datetime.now(timezone.utc))
    if not len(found.ids):
        return 0
    _, pair_loan = eligible_pairs(
        found.grade, found.frequency, found.purpose, found.term_days, found.rate_bps,
        [_mask(rules.grades, GRADES)], [_mask(rules.frequencies, FREQUENCIES)], [_mask(rules.purposes, PURPOSES)],
        [rules.max_term_days], [rules.min_rate_bps])
    return int(np.sum(found.el_rate[pair_loan] * 10_000 <= rules.max_expected_loss_bps))


# --- the run --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    run_id: int | None
    planned: int
    bought: int
    refused: int


def run_autoinvest(database: Database, settings: Settings, now: datetime | None = None) -> RunReport:
    """Resume a run cut short, else plan one if anything asked for it; then buy its orders."""
    from marketplace.services.loans import pledge

    run_id = database.run(lambda c: _unfinished_run(c)) or database.run(lambda c: _plan(c, settings, now))
    if run_id is None:
        return RunReport(None, 0, 0, 0)
    crash_at(settings.fault_injection, "autoinvest:after-plan")
    orders = database.read(lambda c: c.execute(
        select(autoinvest_orders.c.id, autoinvest_orders.c.lender_id, autoinvest_orders.c.loan_id,
               autoinvest_orders.c.amount_msat)
        .where(autoinvest_orders.c.run_id == run_id, autoinvest_orders.c.status == "planned")
        .order_by(autoinvest_orders.c.id)).all())
    bought = refused = 0
    for order in orders:
        try:
            note_id = pledge(database, settings, int(order.lender_id), int(order.loan_id), int(order.amount_msat),
                             request_key=f"autoinvest-{order.id}", now=now)
        except Refusal as refusal:
            database.run(lambda c: _mark(c, int(order.id), "refused", None, refusal.message))
            refused += 1
            continue
        # The note is pledged (committed) but its order not yet marked bought: the resumed run must not buy twice.
        crash_at(settings.fault_injection, "autoinvest:mid-run")
        database.run(lambda c: _mark(c, int(order.id), "bought", note_id, ""))
        bought += 1
    database.run(lambda c: _finish(c, run_id))
    planned = database.read(lambda c: int(c.execute(select(func.count()).select_from(autoinvest_orders)
                                                    .where(autoinvest_orders.c.run_id == run_id)).scalar_one()))
    return RunReport(run_id, planned, bought, refused)


def _unfinished_run(conn: Connection) -> int | None:
    found = conn.execute(select(autoinvest_runs.c.id).where(autoinvest_runs.c.status == "buying")
                         .order_by(autoinvest_runs.c.id).limit(1)).scalar()
    return None if found is None else int(found)


def _mark(conn: Connection, order_id: int, status: str, note_id: int | None, error: str) -> None:
    conn.execute(update(autoinvest_orders).where(autoinvest_orders.c.id == order_id)
                 .values(status=status, note_id=note_id, error=error[:500]))
    if note_id is not None:
        conn.execute(update(notes).where(notes.c.id == note_id).values(autoinvest_order_id=order_id))


def _finish(conn: Connection, run_id: int) -> None:
    bought = conn.execute(select(func.coalesce(func.sum(autoinvest_orders.c.amount_msat), 0))
                          .where(autoinvest_orders.c.run_id == run_id, autoinvest_orders.c.status == "bought")
                          ).scalar_one()
    conn.execute(update(autoinvest_runs).where(autoinvest_runs.c.id == run_id)
                 .values(status="done", finished_at=datetime.now(timezone.utc), bought_msat=int(bought)))
    prune(conn, run_id)


def _plan(conn: Connection, settings: Settings, now: datetime | None) -> int | None:
    """Take the pending triggers and store one run's orders; None when nothing asked for a run."""
    moment = now or datetime.now(timezone.utc)
    pending = [int(i) for i in conn.execute(select(autoinvest_queue.c.id)
                                            .where(autoinvest_queue.c.run_id.is_(None))).scalars()]
    if not pending:
        return None
    unit = unit_msat(settings.note_min_sat)
    rules_rows = conn.execute(select(autoinvest_rules).where(autoinvest_rules.c.enabled.is_(True))
                              .order_by(autoinvest_rules.c.lender_id)).all()
    lender_ids = [int(r.lender_id) for r in rules_rows]
    rules = [_row_to_rules(r) for r in rules_rows]
    found = open_loans(conn, unit, moment)
    result = conn.execute(insert(autoinvest_runs).values(status="buying", started_at=moment,
                                                         lenders=len(lender_ids), loans=len(found.ids),
                                                         planned_msat=0))
    assert result.inserted_primary_key is not None
    run_id = int(result.inserted_primary_key[0])
    conn.execute(update(autoinvest_queue).where(autoinvest_queue.c.id.in_(pending)).values(run_id=run_id))
    orders = _orders(conn, lender_ids, rules, found, unit) if lender_ids and len(found.ids) else []
    if orders:
        conn.execute(insert(autoinvest_orders), [
            {"run_id": run_id, "lender_id": lender, "loan_id": loan, "amount_msat": amount, "status": "planned"}
            for lender, loan, amount in orders])
    conn.execute(update(autoinvest_runs).where(autoinvest_runs.c.id == run_id)
                 .values(planned_msat=sum(amount for _, _, amount in orders)))
    return run_id


def _balances(conn: Connection, lender_ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """(available, account value = available + reserved + outstanding principal) per lender."""
    available: dict[int, int] = {}
    value: dict[int, int] = {}
    for user_id, kind, balance in conn.execute(
            select(accounts.c.user_id, accounts.c.kind, accounts.c.balance_msat)
            .where(accounts.c.user_id.in_(lender_ids),
                   accounts.c.kind.in_((AccountKind.USER_AVAILABLE.value, AccountKind.USER_RESERVED.value)))):
        value[int(user_id)] = value.get(int(user_id), 0) + int(balance)
        if kind == AccountKind.USER_AVAILABLE.value:
            available[int(user_id)] = int(balance)
    for lender, outstanding in conn.execute(
            select(notes.c.lender_id, func.sum(notes.c.principal_outstanding_msat))
            .where(notes.c.lender_id.in_(lender_ids), notes.c.status == "active").group_by(notes.c.lender_id)):
        value[int(lender)] = value.get(int(lender), 0) + int(outstanding or 0)
    return available, value


def nothing_to_buy_of(conn: Connection, settings: Settings, lender_id: int, rules: Rules, held_msat: int
                      ) -> Message | None:
    """Why auto-invest would buy nothing for this lender whatever matches (the page and the API say so)."""
    available, value = _balances(conn, [lender_id])
    unit = unit_msat(settings.note_min_sat)
    return nothing_to_buy(rules, available.get(lender_id, 0), held_msat, note_size(rules, value.get(lender_id, 0), unit),
                          unit)


def _orders(conn: Connection, lender_ids: list[int], rules: list[Rules], found: OpenLoans,
            unit: int) -> list[tuple[int, int, int]]:
    available, value = _balances(conn, lender_ids)
    held = held_by_autoinvest(conn, lender_ids, {i: r.reinvest for i, r in zip(lender_ids, rules)})
    pair_lender, pair_loan = eligible_pairs(
        found.grade, found.frequency, found.purpose, found.term_days, found.rate_bps,
        [_mask(r.grades, GRADES) for r in rules], [_mask(r.frequencies, FREQUENCIES) for r in rules],
        [_mask(r.purposes, PURPOSES) for r in rules], [r.max_term_days for r in rules],
        [r.min_rate_bps for r in rules], loan_borrower=found.borrower,
        lender_user=np.asarray(lender_ids, dtype=np.int64))
    # Never a second note in a loan the lender already holds (by hand or not); never past the borrower cap.
    index_of_loan = {int(loan): j for j, loan in enumerate(found.ids)}
    index_of_lender = {lender: i for i, lender in enumerate(lender_ids)}
    holds: set[tuple[int, int]] = set()
    borrower_room: dict[tuple[int, int], int] = {}
    exposure = case((notes.c.status == "pledged", notes.c.amount_msat), else_=notes.c.principal_outstanding_msat)
    for lender, loan, borrower, amount in conn.execute(
            select(notes.c.lender_id, notes.c.loan_id, loans.c.borrower_id, func.sum(exposure))
            .select_from(notes.join(loans, loans.c.id == notes.c.loan_id))
            .where(notes.c.lender_id.in_(lender_ids), notes.c.status.in_(("pledged", "active")))
            .group_by(notes.c.lender_id, notes.c.loan_id, loans.c.borrower_id)):
        i = index_of_lender[int(lender)]
        if int(loan) in index_of_loan:
            holds.add((i, index_of_loan[int(loan)]))
        key = (i, int(borrower))
        borrower_room[key] = borrower_room.get(key, 0) + int(amount or 0)
    keep = np.ones(len(pair_lender), dtype=bool)
    for p, (i, j) in enumerate(zip(pair_lender.tolist(), pair_loan.tolist())):
        used = borrower_room.get((i, int(found.borrower[j])), 0)
        if (i, j) in holds or rules[i].max_per_borrower_msat - used < unit:
            keep[p] = False
    pair_lender, pair_loan = pair_lender[keep], pair_loan[keep]
    budget = [max(0, min(available.get(i, 0), r.budget_msat - held[i])) // unit for i, r in zip(lender_ids, rules)]
    cap = [note_size(r, value.get(i, 0), unit) // unit for i, r in zip(lender_ids, rules)]
    idle = [min(1.0, available.get(i, 0) / value[i]) if value.get(i, 0) > 0 else 1.0 for i in lender_ids]
    if not len(pair_lender):
        return []
    allocation = Allocator(
        pair_lender, pair_loan, budget, found.remaining_notes, per_loan_cap=cap, idle_share=idle,
        el_rate=found.el_rate, el_ceiling=[r.max_expected_loss_bps / 10_000 for r in rules],
        loan_priority=found.age_order).solve()
    # Whole notes of each lender's size (its note, within its per-loan limits), the flow's choice first.
    groups: dict[tuple[int, int], int] = {}
    pair_group = np.array([groups.setdefault((i, int(found.borrower[j])), len(groups))
                           for i, j in zip(pair_lender.tolist(), pair_loan.tolist())], dtype=np.int64)
    group_room = np.zeros(len(groups), np.int64)
    for (i, borrower), g in groups.items():
        group_room[g] = max(0, rules[i].max_per_borrower_msat - borrower_room.get((i, borrower), 0)) // unit
    units = whole_notes(pair_lender, pair_loan, allocation.notes, cap, budget, found.remaining_notes,
                        lender_order=np.lexsort((np.arange(len(idle)), -np.asarray(idle))),
                        loan_order=found.age_order, el_bps=np.round(found.el_rate * 10_000).astype(np.int64),
                        ceiling_bps=[r.max_expected_loss_bps for r in rules], pair_group=pair_group,
                        group_room_units=group_room)
    return [(lender_ids[int(pair_lender[p])], int(found.ids[int(pair_loan[p])]), int(units[p]) * unit)
            for p in np.flatnonzero(units).tolist()]
