"""loans

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('loans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('borrower_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_msat', sa.BigInteger(), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('story', sa.Text(), nullable=False),
    sa.Column('annual_rate_bps', sa.Integer(), nullable=False),
    sa.Column('term_count', sa.Integer(), nullable=False),
    sa.Column('frequency', sa.String(length=8), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('apr_bps', sa.Integer(), nullable=False),
    sa.Column('service_fee_bps', sa.Integer(), nullable=False),
    sa.Column('grade', sa.String(length=1), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('delinquency', sa.String(length=12), server_default='current', nullable=False),
    sa.Column('funded_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('escrow_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('funding_deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('funded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disbursed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('defaulted_on', sa.Date(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('max_days_past_due', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("delinquency IN ('current', 'grace', 'late', 'defaulted')", name=op.f('ck_loans_delinquency')),
    sa.CheckConstraint("status IN ('funding', 'funded', 'active', 'repaid', 'expired', 'written_off')", name=op.f('ck_loans_status')),
    sa.CheckConstraint('amount_msat > 0 AND funded_msat >= 0 AND funded_msat <= amount_msat', name=op.f('ck_loans_funding')),
    sa.ForeignKeyConstraint(['borrower_id'], ['users.id'], name=op.f('fk_loans_borrower_id_users')),
    sa.ForeignKeyConstraint(['escrow_account_id'], ['accounts.id'], name=op.f('fk_loans_escrow_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loans'))
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index('ix_loans_status', ['status'], unique=False)

    op.create_table('installments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('principal_msat', sa.BigInteger(), nullable=False),
    sa.Column('interest_msat', sa.BigInteger(), nullable=False),
    sa.Column('late_fee_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('principal_paid_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('interest_paid_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('late_fee_paid_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('interest_waived', sa.Boolean(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_installments_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_installments'))
    )
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.create_index('ix_installments_loan_number', ['loan_id', 'number'], unique=True)

    op.create_table('notes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lender_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_msat', sa.BigInteger(), nullable=False),
    sa.Column('principal_outstanding_msat', sa.BigInteger(), nullable=False),
    sa.Column('principal_repaid_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('income_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('received_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('loss_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pledged', 'released', 'active', 'repaid', 'written_off')", name=op.f('ck_notes_status')),
    sa.CheckConstraint('amount_msat > 0 AND principal_outstanding_msat >= 0', name=op.f('ck_notes_amounts')),
    sa.ForeignKeyConstraint(['lender_id'], ['users.id'], name=op.f('fk_notes_lender_id_users')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_notes_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notes'))
    )
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notes_lender_id'), ['lender_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notes_loan_id'), ['loan_id'], unique=False)

    op.create_table('repayments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_hash', sa.String(length=64), nullable=False),
    sa.Column('received_msat', sa.BigInteger(), nullable=False),
    sa.Column('applied_msat', sa.BigInteger(), nullable=False),
    sa.Column('refund_msat', sa.BigInteger(), nullable=False),
    sa.Column('service_fee_msat', sa.BigInteger(), nullable=False),
    sa.Column('late_fee_msat', sa.BigInteger(), nullable=False),
    sa.Column('interest_msat', sa.BigInteger(), nullable=False),
    sa.Column('principal_msat', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_repayments_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_repayments_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repayments')),
    sa.UniqueConstraint('payment_hash', name=op.f('uq_repayments_payment_hash'))
    )
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repayments_loan_id'), ['loan_id'], unique=False)

    op.create_table('note_shares',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_hash', sa.String(length=64), nullable=False),
    sa.Column('note_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cash_msat', sa.BigInteger(), nullable=False),
    sa.Column('principal_msat', sa.BigInteger(), nullable=False),
    sa.Column('income_msat', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['note_id'], ['notes.id'], name=op.f('fk_note_shares_note_id_notes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_note_shares'))
    )
    with op.batch_alter_table('note_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_note_shares_note_id'), ['note_id'], unique=False)
        batch_op.create_index('ix_note_shares_payment_note', ['payment_hash', 'note_id'], unique=True)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_invoices_loan_id'), ['loan_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_invoices_loan_id_loans'), 'loans', ['loan_id'], ['id'])

    with op.batch_alter_table('outgoing_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_outgoing_payments_loan_id'), ['loan_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outgoing_payments_loan_id_loans'), 'loans', ['loan_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('outgoing_payments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outgoing_payments_loan_id_loans'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outgoing_payments_loan_id'))
        batch_op.drop_column('loan_id')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_loan_id_loans'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_invoices_loan_id'))
        batch_op.drop_column('loan_id')

    with op.batch_alter_table('note_shares', schema=None) as batch_op:
        batch_op.drop_index('ix_note_shares_payment_note')
        batch_op.drop_index(batch_op.f('ix_note_shares_note_id'))

    op.drop_table('note_shares')
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repayments_loan_id'))

    op.drop_table('repayments')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notes_loan_id'))
        batch_op.drop_index(batch_op.f('ix_notes_lender_id'))

    op.drop_table('notes')
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.drop_index('ix_installments_loan_number')

    op.drop_table('installments')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_status')
        batch_op.drop_index(batch_op.f('ix_loans_borrower_id'))

    op.drop_table('loans')
