"""money rules that do not depend on how the money is sent: simple interest, pay-ahead, no accrual after write-off

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

Loans already running are carried onto the new rules (the README's "Money rules" says the same to people):

* what they owe today does not change: the balance (principal owed, interest accrued up to the last
  payment) stays as it is, and interest accrues on from there by the new rule (simple interest, every
  day of a period costing its share);
* installments due up to today keep their amounts; the ones still to come are recomputed from the
  balance by the new rule (a part-paid one keeps its total);
* written-off loans accrue nothing after their write-off date from now on; what they owed then stays
  owed. The remainders waiting in their escrow are paid out to their notes by the next daily job
  (`microlend loans age`), which posts one journal entry a loan: this step moves no money.

`microlend ledger verify` is clean across it. The data step uses the domain's own pure functions.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_loans = sa.table(
    'loans', sa.column('id', sa.Integer), sa.column('amount_msat', sa.BigInteger),
    sa.column('annual_rate_bps', sa.Integer), sa.column('term_count', sa.Integer),
    sa.column('frequency', sa.String), sa.column('method', sa.String), sa.column('status', sa.String),
    sa.column('start_date', sa.Date), sa.column('prepayment', sa.String),
    sa.column('principal_outstanding_msat', sa.BigInteger), sa.column('interest_accrued_msat', sa.BigInteger),
    sa.column('accrued_on', sa.Date), sa.column('installment_msat', sa.BigInteger),
)
_installments = sa.table(
    'installments', sa.column('id', sa.Integer), sa.column('loan_id', sa.Integer), sa.column('number', sa.Integer),
    sa.column('due_date', sa.Date), sa.column('principal_msat', sa.BigInteger),
    sa.column('interest_msat', sa.BigInteger), sa.column('late_fee_msat', sa.BigInteger),
    sa.column('principal_paid_msat', sa.BigInteger), sa.column('interest_paid_msat', sa.BigInteger),
    sa.column('late_fee_paid_msat', sa.BigInteger), sa.column('settled_on', sa.Date),
)


def upgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shared_cash_base_msat', sa.BigInteger(), nullable=True))
    _reproject_running_loans(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('shared_cash_base_msat')


def _reproject_running_loans(conn: sa.Connection) -> None:
    from marketplace.domain.loans.allocation import Balance, InstallmentState, LoanState, refresh, validate
    from marketplace.domain.loans.schedules import Contract, Frequency, Method, Prepayment

    today = datetime.now(timezone.utc).date()
    running = conn.execute(sa.select(_loans).where(_loans.c.status == 'active',
                                                   _loans.c.accrued_on.is_not(None))).all()
    for loan in running:
        contract = Contract(int(loan.amount_msat), int(loan.annual_rate_bps), int(loan.term_count),
                            Frequency(loan.frequency), Method(loan.method), loan.start_date,
                            Prepayment(loan.prepayment))
        rows = conn.execute(sa.select(_installments).where(_installments.c.loan_id == loan.id)
                            .order_by(_installments.c.number)).all()
        before = tuple(InstallmentState(int(r.number), r.due_date, int(r.principal_msat), int(r.interest_msat),
                                        int(r.late_fee_msat), int(r.principal_paid_msat),
                                        int(r.interest_paid_msat), int(r.late_fee_paid_msat), r.settled_on)
                       for r in rows)
        balance = Balance(int(loan.principal_outstanding_msat), int(loan.interest_accrued_msat), loan.accrued_on)
        level = None if loan.installment_msat is None else int(loan.installment_msat)
        after = refresh(LoanState(contract, balance, before, level), today)
        validate(after)
        kept = {inst.number: inst for inst in after.installments}
        for row in rows:
            inst = kept.get(int(row.number))
            if inst is None:
                conn.execute(sa.delete(_installments).where(_installments.c.id == row.id))
            elif (inst.principal_msat, inst.interest_msat) != (int(row.principal_msat), int(row.interest_msat)):
                conn.execute(sa.update(_installments).where(_installments.c.id == row.id)
                             .values(principal_msat=inst.principal_msat, interest_msat=inst.interest_msat))
