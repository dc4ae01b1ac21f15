"""Auto-invest through the real services: rules, the trigger queue, the engine run, crash resumption."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, func, select

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import autoinvest_orders, autoinvest_queue, autoinvest_runs, loans, notes
from marketplace.db.verify import verify_ledger
from marketplace.domain.autoinvest import Rules
from marketplace.domain.errors import InvalidInput
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import autoinvest
from marketplace.services import loans as loan_service
from marketplace.settings import Settings
from marketplace.web.views.autoinvest import rules_from_fields
from tests.ledger_helpers import deposit_entry, make_user

STORY = "Stock for a market stall, repaid every week."


def lenders_with(database: Database, amounts_msat: list[int]) -> list[int]:
    def work(conn: Connection) -> list[int]:
        ids = []
        for amount in amounts_msat:
            lender, accts = make_user(conn, "lender")
            ledger.post(conn, [deposit_entry(conn, accts[AccountKind.USER_AVAILABLE], amount)])
            ids.append(lender)
        return ids

    return database.run(work)


def requests(database: Database, settings: Settings, amounts_sat: list[int], rng: random.Random) -> list[int]:
    borrowers = database.run(lambda c: [make_user(c, "borrower")[0] for _ in amounts_sat])
    ids = []
    for borrower, amount in zip(borrowers, amounts_sat):
        frequency = rng.choice(list(Frequency))
        count = {"daily": rng.randint(20, 90), "weekly": rng.randint(4, 40), "monthly": rng.randint(2, 12)}[frequency]
        terms = LoanTerms(amount * 1000, rng.randint(800, 4000), count, frequency, Method.ANNUITY)
        ids.append(loan_service.request_loan(database, settings, borrower, terms, rng.choice(
            ["business", "farming", "education", "health"]), STORY))
    return ids


def test_two_hundred_lenders_and_a_hundred_requests_meet(database: Database, settings: Settings) -> None:
    rng = random.Random(7)
    settings = settings.replace(loan_min_sat=5_000, loan_first_max_sat=40_000, loan_max_sat=40_000)
    loan_ids = requests(database, settings, [rng.randint(5, 40) * 1000 for _ in range(100)], rng)
    budgets = [rng.randint(2, 12) * 1_000_000 for _ in range(200)]
    lenders = lenders_with(database, [b + 3_000_000 for b in budgets])
    for lender, budget in zip(lenders, budgets):
        grades = frozenset(rng.sample("ABCDE", rng.randint(2, 5)))
        autoinvest.save_rules(database, settings, lender, Rules(
            enabled=True, budget_msat=budget, note_msat=rng.choice([1, 2, 3]) * 1_000_000,
            max_per_loan_msat=5_000_000, max_per_loan_bps=5000, max_per_borrower_msat=5_000_000, grades=grades,
            max_term_days=rng.choice([60, 200, 366]), max_expected_loss_bps=rng.choice([500, 2000, 10_000])))
    report = autoinvest.run_autoinvest(database, settings)
    assert report.run_id is not None and report.bought > 0 and report.bought + report.refused == report.planned
    # Nothing pending: every trigger was taken by that run; a second run has nothing to do.
    assert database.read(lambda c: c.execute(select(func.count()).select_from(autoinvest_queue)
                                              .where(autoinvest_queue.c.run_id.is_(None))).scalar_one()) == 0
    assert autoinvest.run_autoinvest(database, settings).run_id is None

    rows = database.read(lambda c: c.execute(
        select(notes.c.lender_id, notes.c.loan_id, notes.c.amount_msat, loans.c.grade, loans.c.pd_ppm)
        .select_from(notes.join(loans, loans.c.id == notes.c.loan_id))
        .where(notes.c.autoinvest_order_id.is_not(None))).all())
    by_lender: dict[int, list[tuple[int, int, str, int]]] = {}
    for r in rows:
        by_lender.setdefault(int(r.lender_id), []).append((int(r.loan_id), int(r.amount_msat), r.grade,
                                                           int(r.pd_ppm)))
    chosen_notes = {}
    for lender in lenders:
        chosen = database.read(lambda c: autoinvest.rules_of(c, lender))
        assert chosen is not None
        chosen_notes[lender] = chosen.note_msat

    def note_of(lender: int, budget: int) -> int:
        return min(chosen_notes[lender], 5_000_000, (budget + 3_000_000) // 2) // 1_000_000 * 1_000_000

    for lender, budget in zip(lenders, budgets):
        mine = by_lender.get(lender, [])
        loans_held = [loan for loan, _, _, _ in mine]
        assert len(loans_held) == len(set(loans_held))  # one note per loan
        assert sum(amount for _, amount, _, _ in mine) <= budget
        # Whole notes of the size the lender chose (issue 19), within its per-loan limits (5,000 sat, half of
        # the account's value: the deposit), never parts of one.
        assert all(amount == note_of(lender, budget) for _, amount, _, _ in mine), (note_of(lender, budget), mine)
    rules = {lender: database.read(lambda c: autoinvest.rules_of(c, lender)) for lender in lenders}
    for lender, mine in by_lender.items():
        allowed = rules[lender]
        assert allowed is not None and all(grade in allowed.grades for _, _, grade, _ in mine)
        expected_loss = sum(amount * pd / 1e6 * 0.9 for _, amount, _, pd in mine)
        assert expected_loss <= sum(a for _, a, _, _ in mine) * allowed.max_expected_loss_bps / 10_000 + 1

    # Every loan is fully funded or honestly short: no lender whose rules allow it (and whose expected-
    # loss ceiling cannot bind: 100 %) still has budget for one of its notes where the loan has room for it.
    state = database.read(lambda c: {int(r.id): r for r in c.execute(select(loans).where(loans.c.id.in_(loan_ids)))})
    funded = sum(1 for r in state.values() if r.status == "funded")
    spent = {lender: sum(a for _, a, _, _ in by_lender.get(lender, [])) for lender in lenders}
    days = {"daily": 1, "weekly": 7, "monthly": 30}
    for loan_id, r in state.items():
        if r.status != "funding":
            continue
        for lender, budget in zip(lenders, budgets):
            allowed = rules[lender]
            assert allowed is not None
            holds = any(loan == loan_id for loan, _, _, _ in by_lender.get(lender, []))
            eligible = (allowed.max_expected_loss_bps == 10_000 and r.grade in allowed.grades
                        and r.term_count * days[r.frequency] <= allowed.max_term_days and not holds
                        and r.amount_msat - r.funded_msat >= note_of(lender, budget))
            assert not (eligible and budget - spent[lender] >= note_of(lender, budget)), (loan_id, lender)
    assert funded > 0
    assert database.read(verify_ledger).ok


def test_a_run_cut_short_is_resumed_and_buys_nothing_twice(database: Database, settings: Settings) -> None:
    rng = random.Random(3)
    loan_ids = requests(database, settings, [20_000] * 3, rng)
    lenders = lenders_with(database, [50_000_000] * 4)
    for lender in lenders:
        autoinvest.save_rules(database, settings, lender, Rules(enabled=True, budget_msat=30_000_000,
                                                                max_expected_loss_bps=10_000, max_term_days=1000))
    # Plan, then buy the first order as the run does, then "crash" before the order is marked.
    run_id = database.run(lambda c: autoinvest._plan(c, settings, None))
    assert run_id is not None
    first = database.read(lambda c: c.execute(select(autoinvest_orders).where(autoinvest_orders.c.run_id == run_id)
                                              .order_by(autoinvest_orders.c.id).limit(1)).one())
    note_id = loan_service.pledge(database, settings, int(first.lender_id), int(first.loan_id),
                                  int(first.amount_msat), request_key=f"autoinvest-{first.id}")
    resumed = autoinvest.run_autoinvest(database, settings)
    assert resumed.run_id == run_id and resumed.refused == 0
    assert database.read(lambda c: c.execute(select(autoinvest_orders.c.note_id)
                                             .where(autoinvest_orders.c.id == first.id)).scalar_one()) == note_id
    per_pair = database.read(lambda c: c.execute(
        select(notes.c.lender_id, notes.c.loan_id, func.count()).where(notes.c.loan_id.in_(loan_ids))
        .group_by(notes.c.lender_id, notes.c.loan_id)).all())
    assert all(count == 1 for _, _, count in per_pair)
    assert database.read(lambda c: c.execute(select(autoinvest_runs.c.status)
                                             .where(autoinvest_runs.c.id == run_id)).scalar_one()) == "done"
    assert database.read(verify_ledger).ok


def test_an_order_the_market_no_longer_allows_is_refused_with_the_reason(database: Database,
                                                                         settings: Settings) -> None:
    rng = random.Random(5)
    (loan_id,) = requests(database, settings, [10_000], rng)
    (lender, other) = lenders_with(database, [20_000_000, 20_000_000])
    autoinvest.save_rules(database, settings, lender, Rules(enabled=True, budget_msat=10_000_000,
                                                            max_per_loan_msat=10_000_000, note_msat=10_000_000,
                                                            max_per_loan_bps=10_000, max_per_borrower_msat=10_000_000,
                                                            max_expected_loss_bps=10_000, max_term_days=1000))
    run_id = database.run(lambda c: autoinvest._plan(c, settings, None))
    assert run_id is not None
    loan_service.pledge(database, settings, other, loan_id, 10_000_000)  # a hand-bought note takes it all
    report = autoinvest.run_autoinvest(database, settings)
    assert report.bought == 0 and report.refused == 1
    error = database.read(lambda c: c.execute(select(autoinvest_orders.c.error)).scalar_one())
    assert "no longer taking pledges" in error


def test_triggers_are_queued_with_their_cause(database: Database, settings: Settings) -> None:
    rng = random.Random(1)
    (lender,) = lenders_with(database, [5_000_000])
    pending = lambda: database.read(lambda c: [r for r, in c.execute(  # noqa: E731
        select(autoinvest_queue.c.reason).where(autoinvest_queue.c.run_id.is_(None)).order_by(autoinvest_queue.c.id))])
    requests(database, settings, [10_000], rng)
    autoinvest.save_rules(database, settings, lender, Rules(enabled=True, budget_msat=5_000_000))
    assert pending() == ["listed", "rules"]


@pytest.mark.parametrize("fields, message", [
    ({"budget_sat": "-5"}, "budget as a whole number"),
    ({"budget_sat": "١٠٠٠"}, "budget as a whole number"),
    ({"max_expected_loss_percent": "-1"}, "expected-loss ceiling as a percentage"),
    ({"max_expected_loss_percent": "101"}, "between 0 % and 100 %"),
    ({"note_sat": "1500"}, "whole number of 1,000 sat notes"),
    ({"max_per_loan_sat": "500"}, "at least one note"),
    ({"grades": []}, "at least one grade"),
    ({"grades": ["Z"]}, "Unknown grade"),
    ({"max_term_days": "0"}, "longest term must be between"),
    ({"budget_sat": "999999"}, "more than the"),
])
def test_bad_rules_are_refused_and_nothing_changes(database: Database, settings: Settings, fields: dict[str, object],
                                                   message: str) -> None:
    (lender,) = lenders_with(database, [5_000_000])
    good = {"enabled": "on", "budget_sat": "4000", "note_sat": "1000", "max_per_loan_sat": "2000",
            "max_per_loan_percent": "50", "max_per_borrower_sat": "2000", "grades": ["A", "B"],
            "frequencies": ["weekly"], "purposes": ["business"], "max_term_days": "200", "min_rate_percent": "5",
            "max_expected_loss_percent": "3", "reinvest": "on"}
    saved = autoinvest.save_rules(database, settings, lender, rules_from_fields(good))
    with pytest.raises(InvalidInput, match=message):
        autoinvest.save_rules(database, settings, lender, rules_from_fields({**good, **fields}))
    assert database.read(lambda c: autoinvest.rules_of(c, lender)) == saved


def test_rules_no_request_matches_invest_nothing(database: Database, settings: Settings) -> None:
    rng = random.Random(9)
    requests(database, settings, [10_000, 20_000], rng)
    (lender,) = lenders_with(database, [10_000_000])
    rules = Rules(enabled=True, budget_msat=10_000_000, min_rate_bps=9000)  # no request pays 90 %
    autoinvest.save_rules(database, settings, lender, rules)
    assert database.read(lambda c: autoinvest.matching_requests(c, settings, rules)) == 0
    report = autoinvest.run_autoinvest(database, settings, datetime.now(timezone.utc) + timedelta(seconds=1))
    assert report.planned == 0 and report.bought == 0


def test_a_budget_below_one_note_says_it_will_buy_nothing() -> None:
    from marketplace.domain.autoinvest import Rules, note_size, nothing_to_buy

    unit = 1_000_000
    rules = Rules(enabled=True, budget_msat=5_000_000, note_msat=5_000_000, max_per_loan_msat=10_000_000,
                  max_per_loan_bps=500)
    note = note_size(rules, 200_000_000, unit)  # 5 % of 200,000 sat: the 5,000-sat note stands
    assert note == 5_000_000
    # 1,000 sat of the 5,000-sat budget already in notes: 4,000 sat left, below one whole note.
    said = nothing_to_buy(rules, 50_000_000, 1_000_000, note, unit)
    assert said is not None and dict(said.params) == {"room": "4,000 sat", "note": "5,000 sat"}
    assert nothing_to_buy(rules, 50_000_000, 0, note, unit) is None
    assert nothing_to_buy(rules, 4_999_000, 0, note, unit) is not None  # too little money available
    assert nothing_to_buy(Rules(enabled=False), 0, 0, note, unit) is None
    # A small account: 5 % of 15,000 sat is 750 sat, below the smallest note.
    assert note_size(rules, 15_000_000, unit) == 0
    small = nothing_to_buy(rules, 15_000_000, 0, 0, unit)
    assert small is not None and dict(small.params) == {"unit": "1,000 sat"}
