"""auto-invest: lenders' rules, a persisted trigger queue, runs and their orders

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('autoinvest_order_id', sa.BigInteger(), nullable=True))
    op.create_table('autoinvest_rules',
    sa.Column('lender_id', BigId, nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('budget_msat', sa.BigInteger(), nullable=False),
    sa.Column('note_msat', sa.BigInteger(), nullable=False),
    sa.Column('max_per_loan_msat', sa.BigInteger(), nullable=False),
    sa.Column('max_per_loan_bps', sa.Integer(), nullable=False),
    sa.Column('max_per_borrower_msat', sa.BigInteger(), nullable=False),
    sa.Column('grades', sa.String(length=16), nullable=False),
    sa.Column('frequencies', sa.String(length=40), nullable=False),
    sa.Column('purposes', sa.String(length=200), nullable=False),
    sa.Column('max_term_days', sa.Integer(), nullable=False),
    sa.Column('min_rate_bps', sa.Integer(), nullable=False),
    sa.Column('max_expected_loss_bps', sa.Integer(), nullable=False),
    sa.Column('reinvest', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lender_id'], ['users.id'], name=op.f('fk_autoinvest_rules_lender_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('lender_id', name=op.f('pk_autoinvest_rules'))
    )
    op.create_table('autoinvest_queue',
    sa.Column('id', BigId, nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('lender_id', BigId, nullable=True),
    sa.Column('loan_id', BigId, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autoinvest_queue'))
    )
    with op.batch_alter_table('autoinvest_queue', schema=None) as batch_op:
        batch_op.create_index('ix_autoinvest_queue_run_id', ['run_id'], unique=False)
    op.create_table('autoinvest_runs',
    sa.Column('id', BigId, nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lenders', sa.Integer(), nullable=False),
    sa.Column('loans', sa.Integer(), nullable=False),
    sa.Column('planned_msat', sa.BigInteger(), nullable=False),
    sa.Column('bought_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.CheckConstraint("status IN ('buying', 'done')", name=op.f('ck_autoinvest_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autoinvest_runs'))
    )
    op.create_table('autoinvest_orders',
    sa.Column('id', BigId, nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('lender_id', BigId, nullable=False),
    sa.Column('loan_id', BigId, nullable=False),
    sa.Column('amount_msat', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('note_id', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.CheckConstraint("status IN ('planned', 'bought', 'refused')", name=op.f('ck_autoinvest_orders_status')),
    sa.ForeignKeyConstraint(['lender_id'], ['users.id'], name=op.f('fk_autoinvest_orders_lender_id_users')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_autoinvest_orders_loan_id_loans')),
    sa.ForeignKeyConstraint(['run_id'], ['autoinvest_runs.id'], name=op.f('fk_autoinvest_orders_run_id_autoinvest_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autoinvest_orders'))
    )
    with op.batch_alter_table('autoinvest_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_autoinvest_orders_lender_id'), ['lender_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_autoinvest_orders_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_table('autoinvest_orders')
    op.drop_table('autoinvest_runs')
    op.drop_table('autoinvest_queue')
    op.drop_table('autoinvest_rules')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_column('autoinvest_order_id')
