"""lightning: invoices, listener cursor, outgoing payments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('listener_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_pay_index', sa.BigInteger(), nullable=False),
    sa.Column('last_updated_index', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_listener_state_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listener_state'))
    )
    op.create_table('invoices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('label', sa.String(length=96), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_msat', sa.BigInteger(), nullable=False),
    sa.Column('description', sa.String(length=640), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('payment_hash', sa.String(length=64), nullable=True),
    sa.Column('bolt11', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=True),
    sa.Column('pay_index', sa.BigInteger(), nullable=True),
    sa.Column('amount_received_msat', sa.BigInteger(), nullable=True),
    sa.Column('paid_at', sa.BigInteger(), nullable=True),
    sa.Column('credit_entry_id', sa.BigInteger(), nullable=True),
    sa.CheckConstraint("purpose IN ('deposit', 'repayment')", name=op.f('ck_invoices_purpose')),
    sa.CheckConstraint("status IN ('creating', 'unpaid', 'paid', 'expired', 'failed')", name=op.f('ck_invoices_status')),
    sa.CheckConstraint('amount_msat > 0', name=op.f('ck_invoices_amount_positive')),
    sa.ForeignKeyConstraint(['credit_entry_id'], ['journal_entries.id'], name=op.f('fk_invoices_credit_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_invoices_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('label', name=op.f('uq_invoices_label')),
    sa.UniqueConstraint('pay_index', name=op.f('uq_invoices_pay_index')),
    sa.UniqueConstraint('payment_hash', name=op.f('uq_invoices_payment_hash'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_user_id'), ['user_id'], unique=False)

    op.create_table('outgoing_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_hash', sa.String(length=64), nullable=False),
    sa.Column('bolt11', sa.Text(), nullable=False),
    sa.Column('amount_msat', sa.BigInteger(), nullable=False),
    sa.Column('fee_reserve_msat', sa.BigInteger(), nullable=False),
    sa.Column('fee_msat', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.Column('payment_preimage', sa.String(length=64), nullable=True),
    sa.Column('hold_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('settle_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'unknown')", name=op.f('ck_outgoing_payments_status')),
    sa.CheckConstraint('amount_msat > 0 AND fee_reserve_msat >= 0', name=op.f('ck_outgoing_payments_amounts')),
    sa.ForeignKeyConstraint(['hold_entry_id'], ['journal_entries.id'], name=op.f('fk_outgoing_payments_hold_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['settle_entry_id'], ['journal_entries.id'], name=op.f('fk_outgoing_payments_settle_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_outgoing_payments_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_payments')),
    sa.UniqueConstraint('payment_hash', name=op.f('uq_outgoing_payments_payment_hash'))
    )
    with op.batch_alter_table('outgoing_payments', schema=None) as batch_op:
        batch_op.create_index('ix_outgoing_payments_status', ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoing_payments_user_id'), ['user_id'], unique=False)

    op.bulk_insert(
        sa.table("listener_state", sa.column("id", sa.Integer), sa.column("last_pay_index", sa.BigInteger),
                 sa.column("last_updated_index", sa.BigInteger)),
        [{"id": 1, "last_pay_index": 0, "last_updated_index": 0}],
    )


def downgrade() -> None:
    with op.batch_alter_table('outgoing_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoing_payments_user_id'))
        batch_op.drop_index('ix_outgoing_payments_status')

    op.drop_table('outgoing_payments')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_user_id'))
        batch_op.drop_index('ix_invoices_status_expires')

    op.drop_table('invoices')
    op.drop_table('listener_state')
