"""reach: a loan's static pay code (LNURL-pay handle); when a person's data was erased

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('pay_handles',
    sa.Column('loan_id', BigId, nullable=False),
    sa.Column('handle', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_pay_handles_loan_id_loans')),
    sa.PrimaryKeyConstraint('loan_id', name=op.f('pk_pay_handles')),
    sa.UniqueConstraint('handle', name=op.f('uq_pay_handles_handle'))
    )


def downgrade() -> None:
    op.drop_table('pay_handles')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
