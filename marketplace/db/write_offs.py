"""What a write-off does in the books besides the loan's status: the escrow's remainders go to the notes.

Each note holds its exact share of what the lenders received, rounded down; the under-1-msat
remainders wait in the loan's escrow for the closing repayment (sharing.py, rule 3). A written-off
loan may never close, so at the write-off they are paid out as a closing repayment would pay them, and
recoveries after it are shared counting from there (`shared_cash_base_msat`).
"""
from __future__ import annotations

from sqlalchemy import Connection, bindparam, select, update

from marketplace.db import ledger
from marketplace.db.loans import note_weights
from marketplace.db.tables import accounts, loans, notes
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.domain.loans.sharing import Notes, remainder_payout


def pay_out_remainders(conn: Connection, loan_id: int) -> int:
    """Pay the escrow's remainders of a written-off loan to its notes, once; the msat paid out."""
    loan = conn.execute(select(loans.c.status, loans.c.shared_cash_msat, loans.c.shared_cash_base_msat,
                               loans.c.escrow_account_id).where(loans.c.id == loan_id).with_for_update()).one()
    if loan.status != "written_off" or loan.shared_cash_base_msat is not None:
        return 0
    cash = int(loan.shared_cash_msat)
    conn.execute(update(loans).where(loans.c.id == loan_id).values(shared_cash_base_msat=cash))
    held = note_weights(conn, [loan_id])[loan_id]
    if not held:
        return 0
    bonus = remainder_payout(Notes.of([w for _, w, _ in held]), cash, rotation=loan_id)
    paid = sum(bonus)
    escrow = int(conn.execute(select(accounts.c.balance_msat)
                              .where(accounts.c.id == loan.escrow_account_id)).scalar_one())
    if paid == 0 or escrow < paid:  # loans from before the shares were derived (0006) may hold less
        return 0
    available = ledger.user_account_ids(conn, {lender for _, _, lender in held}, AccountKind.USER_AVAILABLE)
    lines: dict[int, int] = {int(loan.escrow_account_id): paid}
    for (_, _, lender), one in zip(held, bonus):
        if one:
            lines[available[lender]] = lines.get(available[lender], 0) - one
    ledger.post(conn, [EntryDraft("write_off_remainders",
                                  tuple(LineDraft(account, amount) for account, amount in lines.items()),
                                  f"write-off-remainders:{loan_id}", memo=f"loan {loan_id}: escrow remainders")])
    conn.execute(update(notes).where(notes.c.id == bindparam("n_id")).values(
        received_msat=notes.c.received_msat + bindparam("one"), income_msat=notes.c.income_msat + bindparam("one")),
        [{"n_id": note_id, "one": one} for (note_id, _, _), one in zip(held, bonus) if one])
    return paid
