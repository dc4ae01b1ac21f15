"""hostile test, second round: pay-code invoices apart, no raw network addresses on invoices, a refund queue for
money that arrives for an erased person, API token expiry and scope, auto-invest rule changes counted

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('made_by', sa.String(length=8), server_default='owner', nullable=False))
        batch_op.create_index('ix_invoices_loan_made_by', ['loan_id', 'made_by', 'status'], unique=False)
    # Raw network addresses go: from now on only a keyed hash is kept, and only for the open-invoice caps.
    op.execute("UPDATE invoices SET address = NULL")

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('scope', sa.String(length=8), server_default='full', nullable=False))

    op.create_table('refund_queue',
    sa.Column('id', _BIG_ID, nullable=False),
    sa.Column('invoice_id', _BIG_ID, nullable=False),
    sa.Column('user_id', _BIG_ID, nullable=False),
    sa.Column('loan_id', _BIG_ID, nullable=True),
    sa.Column('payment_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=96), nullable=False),
    sa.Column('amount_msat', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('entry_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_refund_queue_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_refund_queue_user_id_users')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_refund_queue_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_queue')),
    sa.UniqueConstraint('payment_hash', name=op.f('uq_refund_queue_payment_hash')),
    sa.CheckConstraint('amount_msat > 0', name=op.f('ck_refund_queue_amount_positive')),
    )

    # Where money that arrives for an erased person is held until the operator refunds it (frozen here).
    op.bulk_insert(
        sa.table("accounts", sa.column("code", sa.String), sa.column("kind", sa.String),
                 sa.column("normal_side", sa.String), sa.column("non_negative", sa.Boolean),
                 sa.column("balance_msat", sa.BigInteger), sa.column("created_at", sa.DateTime(timezone=True))),
        [{"code": "system:refunds_due", "kind": "refunds_due", "normal_side": "credit", "non_negative": True,
          "balance_msat": 0, "created_at": datetime.now(timezone.utc)}],
    )

    op.create_table('autoinvest_rule_changes',
    sa.Column('id', _BIG_ID, nullable=False),
    sa.Column('lender_id', _BIG_ID, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autoinvest_rule_changes')),
    )
    with op.batch_alter_table('autoinvest_rule_changes', schema=None) as batch_op:
        batch_op.create_index('ix_autoinvest_rule_changes_lender_at', ['lender_id', 'at'], unique=False)
    # Triggers of finished runs are pruned from now on; those already there go now.
    op.execute("DELETE FROM autoinvest_queue WHERE run_id IN (SELECT id FROM autoinvest_runs WHERE status = 'done')")


def downgrade() -> None:
    with op.batch_alter_table('autoinvest_rule_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_autoinvest_rule_changes_lender_at')
    op.drop_table('autoinvest_rule_changes')
    op.drop_table('refund_queue')
    op.execute("DELETE FROM accounts WHERE code = 'system:refunds_due'")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('scope')
        batch_op.drop_column('expires_at')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_loan_made_by')
        batch_op.drop_column('made_by')
