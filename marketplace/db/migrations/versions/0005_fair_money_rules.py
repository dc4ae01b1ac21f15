"""fair money rules: interest on the principal owed, exact note shares, fee on income only

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

Loans already running are carried onto the new rules (the README's "Fair
money rules" says the same to people):

* their balance is what the old schedule left unpaid: the principal still
  owed, and the interest of installments already due and not paid;
* interest accrues from the last due date (or the start), so the period in
  progress is counted once; where the old rules had already taken the
  current installment's whole interest in advance, accrual restarts only at
  that installment's due date, so nothing is charged twice;
* installments due up to today keep their amounts; the ones still to come
  are recomputed from the principal owed (same installment amount, shorter
  term); installments the old rules had already prepaid stay as paid;
* each note's share weight is its principal outstanding today (how the old
  rules split the remaining repayments), and the fee counts income from now on.

Nothing here moves money: `microlend ledger verify` is clean across it.
The data step uses the domain's own pure functions (the new rules
themselves), on rows read with lightweight table definitions.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

LOAN_STATUSES = "status IN ('funding', 'funded', 'active', 'repaid', 'expired', 'lapsed', 'written_off')"
OLD_LOAN_STATUSES = "status IN ('funding', 'funded', 'active', 'repaid', 'expired', 'written_off')"
DISBURSE_DAYS = 7


def upgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prepayment', sa.String(length=20), server_default='reduce_term',
                                      nullable=False))
        batch_op.add_column(sa.Column('aprc_bps', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('disburse_by', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('principal_outstanding_msat', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('interest_accrued_msat', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('accrued_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('installment_msat', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('shared_cash_msat', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('shared_principal_msat', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('shared_income_msat', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint(op.f('ck_loans_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_loans_status'), LOAN_STATUSES)
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('share_weight_msat', sa.BigInteger(), server_default='0', nullable=False))
    op.create_table('job_runs',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_as_of', sa.Date(), nullable=False),
    sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_runs'))
    )
    _carry_loans_over(op.get_bind())
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.drop_column('interest_waived')


def downgrade() -> None:
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interest_waived', sa.Boolean(), server_default='0', nullable=False))
    op.drop_table('job_runs')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_column('share_weight_msat')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_loans_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_loans_status'), OLD_LOAN_STATUSES)
        for name in ('shared_income_msat', 'shared_principal_msat', 'shared_cash_msat', 'installment_msat', 'accrued_on',
                     'interest_accrued_msat', 'principal_outstanding_msat', 'disburse_by', 'aprc_bps',
                     'prepayment'):
            batch_op.drop_column(name)


_loans = sa.table(
    'loans', sa.column('id', sa.Integer), sa.column('amount_msat', sa.BigInteger),
    sa.column('annual_rate_bps', sa.Integer), sa.column('term_count', sa.Integer),
    sa.column('frequency', sa.String), sa.column('method', sa.String), sa.column('status', sa.String),
    sa.column('start_date', sa.Date), sa.column('created_at', sa.DateTime), sa.column('aprc_bps', sa.Integer),
    sa.column('disburse_by', sa.DateTime), sa.column('principal_outstanding_msat', sa.BigInteger),
    sa.column('interest_accrued_msat', sa.BigInteger), sa.column('accrued_on', sa.Date),
)
_notes = sa.table(
    'notes', sa.column('id', sa.Integer), sa.column('loan_id', sa.Integer), sa.column('amount_msat', sa.BigInteger),
    sa.column('principal_outstanding_msat', sa.BigInteger), sa.column('status', sa.String),
    sa.column('share_weight_msat', sa.BigInteger),
)
_installments = sa.table(
    'installments', sa.column('id', sa.Integer), sa.column('loan_id', sa.Integer), sa.column('number', sa.Integer),
    sa.column('due_date', sa.Date), sa.column('principal_msat', sa.BigInteger),
    sa.column('interest_msat', sa.BigInteger), sa.column('late_fee_msat', sa.BigInteger),
    sa.column('principal_paid_msat', sa.BigInteger), sa.column('interest_paid_msat', sa.BigInteger),
    sa.column('late_fee_paid_msat', sa.BigInteger), sa.column('interest_waived', sa.Boolean),
)


def _carry_loans_over(conn: sa.Connection) -> None:
    from marketplace.domain.loans.allocation import Balance, InstallmentState, reproject, validate
    from marketplace.domain.loans.apr import schedule_aprc_bps
    from marketplace.domain.loans.schedules import Contract, Frequency, Method, contract_schedule

    today = datetime.now(timezone.utc).date()
    for loan in conn.execute(sa.select(_loans)).all():
        start = loan.start_date or today
        contract = Contract(int(loan.amount_msat), int(loan.annual_rate_bps), int(loan.term_count),
                            Frequency(loan.frequency), Method(loan.method), start)
        values: dict[str, object] = {"aprc_bps": schedule_aprc_bps(contract_schedule(contract))}
        if loan.status == "funded":
            values["disburse_by"] = datetime.now(timezone.utc) + timedelta(days=DISBURSE_DAYS)
        notes = conn.execute(sa.select(_notes).where(_notes.c.loan_id == loan.id)).all()
        weights = {n.id: int(n.amount_msat) for n in notes}
        if loan.status in ("active", "written_off") and loan.start_date is not None:
            rows = conn.execute(sa.select(_installments).where(_installments.c.loan_id == loan.id)
                                .order_by(_installments.c.number)).all()
            state = _carried_state(contract, rows, today, Balance, InstallmentState, reproject)
            validate(state)
            kept = {inst.number for inst in state.installments}
            for row in rows:
                if row.number not in kept:
                    conn.execute(sa.delete(_installments).where(_installments.c.id == row.id))
            for inst in state.installments:
                conn.execute(sa.update(_installments).where(_installments.c.loan_id == loan.id,
                                                            _installments.c.number == inst.number)
                             .values(principal_msat=inst.principal_msat, interest_msat=inst.interest_msat))
            values.update(principal_outstanding_msat=state.balance.principal_msat,
                          interest_accrued_msat=state.balance.interest_msat, accrued_on=state.balance.accrued_on)
            live = [n for n in notes if n.status in ("active", "repaid", "written_off")]
            if sum(int(n.principal_outstanding_msat) for n in live) > 0:
                weights.update({n.id: int(n.principal_outstanding_msat) for n in live})
        conn.execute(sa.update(_loans).where(_loans.c.id == loan.id).values(**values))
        for note_id, weight in weights.items():
            conn.execute(sa.update(_notes).where(_notes.c.id == note_id).values(share_weight_msat=weight))


def _carried_state(contract, rows, today: date, Balance, InstallmentState, reproject):  # type: ignore[no-untyped-def]
    states = []
    for r in rows:
        interest = int(r.interest_paid_msat) if r.interest_waived else int(r.interest_msat)
        states.append(InstallmentState(int(r.number), r.due_date, int(r.principal_msat), interest,
                                       int(r.late_fee_msat), int(r.principal_paid_msat), int(r.interest_paid_msat),
                                       int(r.late_fee_paid_msat)))
    principal = sum(s.principal_unpaid_msat for s in states)
    past = [s for s in states if s.due_date <= today]
    interest = sum(s.interest_unpaid_msat for s in past if not s.is_paid)
    accrued_on = max([contract.start_date] + [s.due_date for s in past])
    current = next((s for s in states if s.due_date > today and not s.is_paid), None)
    if current is not None and current.interest_paid_msat > 0:
        # The old rules took this installment's interest in advance: accrue again only after it.
        accrued_on = current.due_date
        interest += current.interest_unpaid_msat
    balance = Balance(principal, interest, accrued_on)
    return reproject(contract, balance, states, today)
