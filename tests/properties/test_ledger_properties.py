"""Random sequences of postings, transfers and refused postings keep the ledger sound.

Each example opens its own users in the test's database and replays a random
program against a plain-Python model; afterwards every entry balances, all raw
balances sum to zero, no non-negative balance is negative, the chain verifies
and idempotency keys are unique.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, func, select

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import accounts, journal_entries
from marketplace.db.verify import verify_ledger
from marketplace.domain.errors import IdempotencyConflict, InsufficientFunds, UnbalancedEntry
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft, transfer
from tests.ledger_helpers import balance, make_user

USERS = 3
AVAILABLE, RESERVED = AccountKind.USER_AVAILABLE, AccountKind.USER_RESERVED
amounts = st.integers(min_value=1, max_value=50_000)
user_index = st.integers(min_value=0, max_value=USERS - 1)


@dataclass(frozen=True)
class Op:
    name: str
    a: int
    b: int
    amount: int


ops = st.one_of(
    st.builds(Op, st.just("deposit"), user_index, st.just(0), amounts),
    st.builds(Op, st.just("pledge"), user_index, st.just(0), amounts),
    st.builds(Op, st.just("release"), user_index, st.just(0), amounts),
    st.builds(Op, st.just("pay"), user_index, user_index, amounts),
    st.builds(Op, st.just("withdraw"), user_index, st.just(0), amounts),
    st.builds(Op, st.just("unbalanced"), user_index, st.just(0), amounts),
    st.builds(Op, st.just("replay"), st.integers(min_value=0, max_value=50), st.just(0), amounts),
)


def run_program(database: Database, program: list[Op]) -> None:
    prefix = uuid.uuid4().hex

    def setup(conn: Connection) -> tuple[list[dict[AccountKind, int]], int]:
        return [make_user(conn)[1] for _ in range(USERS)], ledger.account_id(conn, "system:node_asset")

    users, node = database.run(setup)
    model = {acct: 0 for user in users for acct in user.values()}
    posted: list[tuple[EntryDraft, dict[int, int]]] = []

    for step, op in enumerate(program):
        key = f"{prefix}:{step}"
        src, dst = users[op.a % USERS], users[op.b % USERS]
        if op.name == "deposit":
            draft = EntryDraft("deposit", (LineDraft(node, op.amount), LineDraft(src[AVAILABLE], -op.amount)), key)
            effect = {src[AVAILABLE]: op.amount}
        elif op.name == "pledge":
            draft = transfer("pledge", src[AVAILABLE], src[RESERVED], op.amount, key)
            effect = {src[AVAILABLE]: -op.amount, src[RESERVED]: op.amount}
        elif op.name == "release":
            draft = transfer("release", src[RESERVED], src[AVAILABLE], op.amount, key)
            effect = {src[RESERVED]: -op.amount, src[AVAILABLE]: op.amount}
        elif op.name == "pay":
            draft = transfer("pay", src[AVAILABLE], dst[AVAILABLE], op.amount, key)
            effect = {src[AVAILABLE]: -op.amount}
            effect[dst[AVAILABLE]] = effect.get(dst[AVAILABLE], 0) + op.amount
        elif op.name == "withdraw":
            draft = EntryDraft("withdrawal", (LineDraft(src[AVAILABLE], op.amount), LineDraft(node, -op.amount)), key)
            effect = {src[AVAILABLE]: -op.amount}
        elif op.name == "unbalanced":
            draft = EntryDraft("bad", (LineDraft(node, op.amount), LineDraft(src[AVAILABLE], -op.amount + 1)), key)
            try:
                database.run(lambda c: ledger.post(c, [draft]))
            except UnbalancedEntry:
                continue
            raise AssertionError("an unbalanced entry was posted")
        else:  # replay an earlier request: same payload is a no-op, another payload is refused
            if not posted:
                continue
            earlier, _ = posted[op.a % len(posted)]
            again = database.run(lambda c: ledger.post(c, [earlier]))[0]
            assert again.replayed
            altered = EntryDraft(earlier.kind, earlier.lines, earlier.idempotency_key, memo="changed")
            try:
                database.run(lambda c: ledger.post(c, [altered]))
            except IdempotencyConflict:
                continue
            raise AssertionError("a changed request reused an idempotency key")

        would_go_negative = any(model[acct] + delta < 0 for acct, delta in effect.items())
        try:
            database.run(lambda c: ledger.post(c, [draft]))
        except InsufficientFunds:
            assert would_go_negative, f"refused although funds sufficed: {op}"
            continue
        assert not would_go_negative, f"posted although it overdraws: {op}"
        for acct, delta in effect.items():
            model[acct] += delta
        posted.append((draft, effect))

    with database.transaction(write=False) as conn:
        for acct, expected in model.items():
            assert balance(conn, acct) == expected
        report = verify_ledger(conn)
        assert report.ok, report.problems
        negative = conn.execute(
            select(func.count()).select_from(accounts)
            .where(accounts.c.non_negative.is_(True), accounts.c.balance_msat < 0)
        ).scalar_one()
        assert negative == 0
        keys = conn.execute(select(journal_entries.c.idempotency_key)
                            .where(journal_entries.c.idempotency_key.is_not(None))).scalars().all()
        assert len(keys) == len(set(keys))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(ops, min_size=1, max_size=30))
def test_random_programs_keep_the_ledger_sound(database: Database, program: list[Op]) -> None:
    run_program(database, program)
