"""Races through HTTP against a real `microlend serve`, on SQLite and PostgreSQL (issue 12, part 2).

Each test sends its requests at the same moment, each from its own client,
then proves: nothing overdrawn, no loan over-funded, nothing credited twice,
the ledger verifies, and every loser got a clear refusal (409/422/429 with a
message), never a 5xx.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import func, select

from marketplace.db.tables import autoinvest_orders, invoices, journal_entries, outgoing_payments, repayments
from marketplace.domain.autoinvest import Rules
from marketplace.domain.journal import AccountKind
from marketplace.services import autoinvest
from marketplace.services import loans as loan_service
from marketplace.workers.listener import PaymentListener
from tests.crash.support import wait_for
from tests.races.support import Answer, RaceRig, assert_refusals, soon

NOTE_MSAT = 1_000_000  # the smallest note (note_min_sat = 1,000)


def _created(answer: Answer) -> bool:
    return answer.status == 201


def test_a_hundred_withdrawals_against_one_balance(rig: RaceRig) -> None:
    (lender,) = rig.people("lender", 1)
    amount, reserve = 1_000_000, 10_000  # fee reserve: at least 10,000 msat
    fits = 10
    rig.deposit([lender], fits * (amount + reserve))
    bolt11s = rig.wallet_invoices(100, amount)

    answers = rig.at_once([(lender, "POST", "/withdrawals", {"bolt11": b}) for b in bolt11s])

    paid = [a for a in answers if a.status == 200 and a.body["status"] == "succeeded"]
    losers = assert_refusals(answers, lambda a: a.status == 200)
    assert not [a for a in answers if a.status == 200 and a.body["status"] != "succeeded"]
    assert {a.code for a in losers} <= {"insufficient_funds"}
    # Every hold is amount + reserve; a reserve comes back once its payment settles (fee 0), so one or two
    # late requests may fit in what the early ones gave back — but never more than the money there was.
    assert fits <= len(paid) <= fits + 1
    fees = sum(int(a.body["fee_msat"]) for a in paid)
    left = rig.balances(lender)
    assert left[AccountKind.USER_AVAILABLE] == fits * (amount + reserve) - len(paid) * amount - fees >= 0
    assert left[AccountKind.USER_PENDING_OUT] == 0
    on_node = rig.database.read(lambda c: int(c.execute(select(func.count()).select_from(outgoing_payments).where(
        outgoing_payments.c.user_id == lender, outgoing_payments.c.status == "succeeded")).scalar_one()))
    assert on_node == len(paid)
    rig.check_books()


def test_a_hundred_lenders_pledge_the_last_notes_of_one_loan(rig: RaceRig) -> None:
    (borrower,) = rig.people("borrower", 1)
    first, *racers = rig.people("lender", 101)
    rig.deposit([first], 90 * NOTE_MSAT)
    rig.deposit(racers, 2 * NOTE_MSAT)
    loan_id = rig.loan(borrower, 100_000)
    assert rig.call(first, "POST", f"/loans/{loan_id}/notes", {"amount_sat": 90_000}).status == 201

    answers = rig.at_once([(lender, "POST", f"/loans/{loan_id}/notes", {"amount_sat": 1_000}) for lender in racers])

    won = [a for a in answers if _created(a)]
    losers = assert_refusals(answers, _created)
    assert len(won) == 10 and len(losers) == 90
    loan = rig.loan_row(loan_id)
    assert loan.status == "funded" and loan.funded_msat == loan.amount_msat == 100 * NOTE_MSAT
    pledged = [n for n in rig.notes_of(loan_id) if n.status == "pledged"]
    assert sum(n.amount_msat for n in pledged) == loan.amount_msat
    winners = {n.lender_id for n in pledged} - {first}
    for lender in racers:
        mine = rig.balances(lender)
        held = NOTE_MSAT if lender in winners else 0
        assert (mine[AccountKind.USER_AVAILABLE], mine[AccountKind.USER_RESERVED]) == (2 * NOTE_MSAT - held, held)
    rig.check_books()


def test_the_same_idempotency_key_twice_at_once(rig: RaceRig) -> None:
    (borrower,) = rig.people("borrower", 1)
    (lender,) = rig.people("lender", 1)
    rig.deposit([lender], 10 * NOTE_MSAT)
    loan_id = rig.loan(borrower, 50_000)
    body = {"amount_sat": 2_000, "idempotency_key": "race-key-0123456789"}

    answers = rig.at_once([(lender, "POST", f"/loans/{loan_id}/notes", body)] * 8)

    # A repeated request is answered as the first was: the same note, never a second one, never a refusal
    # that claims the details differ.
    assert all(a.status == 201 for a in answers), [a for a in answers if a.status != 201]
    assert len({a.body["note"]["id"] for a in answers}) == 1
    assert [n.amount_msat for n in rig.notes_of(loan_id)] == [2 * NOTE_MSAT]
    mine = rig.balances(lender)
    assert (mine[AccountKind.USER_AVAILABLE], mine[AccountKind.USER_RESERVED]) == (8 * NOTE_MSAT, 2 * NOTE_MSAT)
    rig.check_books()


def test_pledges_racing_the_requests_expiry(rig: RaceRig) -> None:
    (borrower,) = rig.people("borrower", 1)
    lenders = rig.people("lender", 30)
    rig.deposit(lenders, 2 * NOTE_MSAT)
    loan_id = rig.loan(borrower, 100_000)
    deadline = soon(3600)
    rig.move_deadline(loan_id, deadline)
    expired: list[int] = []

    def aging_job() -> None:
        # The daily job with its clock at the deadline, run while the pledges (on the real clock, before it)
        # are still coming in: it starts as soon as the first of them has landed.
        wait_for(lambda: rig.notes_of(loan_id), 30, "the first pledge", rig.app)
        expired.append(loan_service.expire_requests(rig.database, deadline + timedelta(seconds=1)))

    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(aging_job)
        answers = rig.at_once([(lender, "POST", f"/loans/{loan_id}/notes", {"amount_sat": 1_000})
                               for lender in lenders])
        job.result()
    assert expired == [1]

    losers = assert_refusals(answers, _created)
    assert all(a.code == "conflict" for a in losers)
    loan = rig.loan_row(loan_id)
    assert loan.status == "expired"
    # Whenever each pledge landed, none is left holding money on an expired request.
    assert [n.id for n in rig.notes_of(loan_id) if n.status != "released"] == []
    for lender in lenders:
        mine = rig.balances(lender)
        assert (mine[AccountKind.USER_AVAILABLE], mine[AccountKind.USER_RESERVED]) == (2 * NOTE_MSAT, 0)
    rig.check_books()


def test_pledges_racing_the_disbursement(rig: RaceRig) -> None:
    (borrower,) = rig.people("borrower", 1)
    first, *racers = rig.people("lender", 21)
    rig.deposit([first], 99 * NOTE_MSAT)
    rig.deposit(racers, 2 * NOTE_MSAT)
    loan_id = rig.loan(borrower, 100_000)
    assert rig.call(first, "POST", f"/loans/{loan_id}/notes", {"amount_sat": 99_000}).status == 201
    bolt11s = rig.wallet_invoices(5, 100 * NOTE_MSAT)

    calls: list[tuple[int, str, str, dict[str, Any] | None]] = [
        (lender, "POST", f"/loans/{loan_id}/notes", {"amount_sat": 1_000}) for lender in racers]
    calls += [(borrower, "POST", f"/loans/{loan_id}/disbursement", {"bolt11": b}) for b in bolt11s]
    answers = rig.at_once(calls)

    pledges, payouts = answers[:len(racers)], answers[len(racers):]
    assert len([a for a in pledges if _created(a)]) == 1
    assert_refusals(pledges, _created)
    sent = [a for a in payouts if a.status == 200]
    assert_refusals(payouts, lambda a: a.status == 200)
    # At most one disbursement; if the last pledge came first, exactly one, and it succeeded.
    assert len(sent) <= 1 and all(a.body["status"] == "succeeded" for a in sent)
    loan = rig.loan_row(loan_id)
    if not sent:  # every disbursement came before the loan was funded: the borrower asks again
        assert loan.status == "funded"
        again = rig.call(borrower, "POST", f"/loans/{loan_id}/disbursement",
                         {"bolt11": rig.wallet_invoices(1, 100 * NOTE_MSAT)[0]})
        assert again.status == 200 and again.body["status"] == "succeeded", again
    loan = rig.loan_row(loan_id)
    assert loan.status == "active" and loan.funded_msat == loan.amount_msat
    active = [n for n in rig.notes_of(loan_id) if n.status == "active"]
    assert sum(n.amount_msat for n in active) == loan.amount_msat and len(active) == 2
    assert rig.balances(borrower)[AccountKind.USER_AVAILABLE] == 0  # the principal went to the wallet, once
    for lender in racers:
        assert rig.balances(lender)[AccountKind.USER_RESERVED] == 0  # an active note's money left the reserve
    rig.check_books()


def test_the_same_repayment_reported_twice_at_once(rig: RaceRig) -> None:
    (borrower,) = rig.people("borrower", 1)
    lenders = rig.people("lender", 4)
    rig.deposit(lenders, 5 * NOTE_MSAT)
    loan_id = rig.loan(borrower, 20_000)
    for lender in lenders:
        assert rig.call(lender, "POST", f"/loans/{loan_id}/notes", {"amount_sat": 5_000}).status == 201
    paid_out = rig.call(borrower, "POST", f"/loans/{loan_id}/disbursement",
                        {"bolt11": rig.wallet_invoices(1, 20 * NOTE_MSAT)[0]})
    assert paid_out.status == 200 and paid_out.body["status"] == "succeeded", paid_out
    asked = rig.call(borrower, "POST", f"/loans/{loan_id}/repayments", {"amount_sat": 3_000})
    assert asked.status == 201, asked
    invoice = asked.body

    # Paid while several listeners (the server's own, and two more here) all look it up at once: a drain
    # and two sweeps each find it paid and each try to credit it.
    listeners = [PaymentListener(rig.database, rig.port) for _ in range(3)]
    go = threading.Barrier(len(listeners) + 1)
    failures: list[BaseException] = []

    def credit(listener: PaymentListener, index: int) -> None:
        go.wait()
        try:
            anyio.run(listener.drain if index == 0 else listener.sweep)
        except BaseException as exc:  # a loser must step over, not fail
            failures.append(exc)

    anyio.run(rig.wallet.pay, str(invoice["bolt11"]), None, 100_000, 30)
    threads = [threading.Thread(target=credit, args=(listener, i)) for i, listener in enumerate(listeners)]
    for thread in threads:
        thread.start()
    go.wait()
    for thread in threads:
        thread.join()
    assert failures == []

    def counted() -> tuple[int, int, str]:
        return rig.database.read(lambda c: (
            int(c.execute(select(func.count()).select_from(repayments)
                          .where(repayments.c.payment_hash == invoice["payment_hash"])).scalar_one()),
            int(c.execute(select(func.count()).select_from(journal_entries)
                          .where(journal_entries.c.kind == "repayment")).scalar_one()),
            str(c.execute(select(invoices.c.status).where(invoices.c.id == invoice["id"])).scalar_one())))

    wait_for(lambda: counted()[2] == "paid", 15, "the repayment credited", rig.app)
    assert counted()[:2] == (1, 1)
    loan = rig.loan_row(loan_id)
    received = sum(n.received_msat for n in rig.notes_of(loan_id))
    fee = rig.database.read(lambda c: int(c.execute(select(repayments.c.service_fee_msat)
                                                    .where(repayments.c.loan_id == loan_id)).scalar_one()))
    assert received + fee == 3 * NOTE_MSAT and loan.shared_cash_msat == received
    assert sum(rig.available(lender) for lender in lenders) == received
    rig.check_books()


def test_auto_invest_racing_hand_bought_notes(rig: RaceRig) -> None:
    (borrower,) = rig.people("borrower", 1)
    robots = rig.people("lender", 5)
    hands = rig.people("lender", 20)
    rig.deposit(robots, 10 * NOTE_MSAT)
    rig.deposit(hands, 2 * NOTE_MSAT)
    unit = NOTE_MSAT
    for robot in robots:
        autoinvest.save_rules(rig.database, rig.settings, robot, Rules(
            enabled=True, budget_msat=10 * unit, note_msat=4 * unit, max_per_loan_msat=4 * unit,
            max_per_loan_bps=10_000, max_expected_loss_bps=10_000))
    loan_id = rig.loan(borrower, 30_000)  # 30 notes; the robots want 20, the hands 20
    reports: list[autoinvest.RunReport] = []
    go = threading.Event()

    def engine() -> None:
        go.wait()
        reports.append(autoinvest.run_autoinvest(rig.database, rig.settings))

    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(engine)
        threading.Timer(0.02, go.set).start()
        answers = rig.at_once([(h, "POST", f"/loans/{loan_id}/notes", {"amount_sat": 1_000}) for h in hands])
        job.result()

    assert_refusals(answers, _created)
    loan = rig.loan_row(loan_id)
    held = rig.notes_of(loan_id)
    assert sum(n.amount_msat for n in held) == loan.funded_msat <= loan.amount_msat
    if loan.funded_msat == loan.amount_msat:
        assert loan.status == "funded"
    report = reports[0]
    orders = rig.database.read(lambda c: list(c.execute(select(autoinvest_orders).where(
        autoinvest_orders.c.run_id == report.run_id, autoinvest_orders.c.loan_id == loan_id))))
    bought = [o for o in orders if o.status == "bought"]
    assert report.bought >= len(bought) and all(o.note_id is not None for o in bought)
    assert all(o.error for o in orders if o.status == "refused")  # each refused order says why
    by_robot = {n.lender_id: n for n in held if n.lender_id in robots}
    assert len(by_robot) == len([n for n in held if n.lender_id in robots])  # one note per loan per robot
    assert {o.note_id for o in bought} == {n.id for n in by_robot.values()}
    assert len([a for a in answers if _created(a)]) == len([n for n in held if n.lender_id in hands])
    for robot in robots:
        mine = rig.balances(robot)
        assert mine[AccountKind.USER_AVAILABLE] + mine[AccountKind.USER_RESERVED] == 10 * unit
    rig.check_books()


