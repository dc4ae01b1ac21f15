"""hardening: sign-up attempts by address; the address each invoice was asked from

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signup_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signup_attempts'))
    )
    with op.batch_alter_table('signup_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_signup_attempts_address_at', ['address', 'at'], unique=False)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_invoices_address_status', ['address', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_address_status')
        batch_op.drop_column('address')

    with op.batch_alter_table('signup_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_signup_attempts_address_at')

    op.drop_table('signup_attempts')
