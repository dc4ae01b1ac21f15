"""derived note shares: repayments carry the lenders' totals; the per-share rows become history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Under the fair-share rules (0005) each note's share of a repayment is a pure
function of the lenders' cumulative totals and the notes' weights, so a
repayment row that carries the totals before it is enough to recompute every
share exactly; writing 100 share rows per repayment was most of the cost of
settling it. The table of stored shares keeps the split of repayments
credited before this revision, renamed `legacy_note_shares`.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shared_cash_before_msat', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('shared_principal_before_msat', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('closing', sa.Boolean(), server_default='0', nullable=False))
    with op.batch_alter_table('note_shares', schema=None) as batch_op:
        batch_op.drop_index('ix_note_shares_payment_note')
        batch_op.drop_index(batch_op.f('ix_note_shares_note_id'))
    op.rename_table('note_shares', 'legacy_note_shares')
    with op.batch_alter_table('legacy_note_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legacy_note_shares_note_id'), ['note_id'], unique=False)
        batch_op.create_index('ix_legacy_note_shares_payment_note', ['payment_hash', 'note_id'], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        # Keep the constraint names the naming convention gives the renamed table.
        op.execute('ALTER TABLE legacy_note_shares RENAME CONSTRAINT pk_note_shares TO pk_legacy_note_shares')
        op.execute('ALTER TABLE legacy_note_shares RENAME CONSTRAINT fk_note_shares_note_id_notes '
                   'TO fk_legacy_note_shares_note_id_notes')
        op.execute('ALTER SEQUENCE note_shares_id_seq RENAME TO legacy_note_shares_id_seq')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER SEQUENCE legacy_note_shares_id_seq RENAME TO note_shares_id_seq')
        op.execute('ALTER TABLE legacy_note_shares RENAME CONSTRAINT fk_legacy_note_shares_note_id_notes '
                   'TO fk_note_shares_note_id_notes')
        op.execute('ALTER TABLE legacy_note_shares RENAME CONSTRAINT pk_legacy_note_shares TO pk_note_shares')
    with op.batch_alter_table('legacy_note_shares', schema=None) as batch_op:
        batch_op.drop_index('ix_legacy_note_shares_payment_note')
        batch_op.drop_index(batch_op.f('ix_legacy_note_shares_note_id'))
    op.rename_table('legacy_note_shares', 'note_shares')
    with op.batch_alter_table('note_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_note_shares_note_id'), ['note_id'], unique=False)
        batch_op.create_index('ix_note_shares_payment_note', ['payment_hash', 'note_id'], unique=True)
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.drop_column('closing')
        batch_op.drop_column('shared_principal_before_msat')
        batch_op.drop_column('shared_cash_before_msat')
