"""foundation: users, sessions, ledger

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from datetime import datetime, timezone

# Frozen here (not imported) so that this migration never changes with the code.
SYSTEM_ACCOUNTS = [
    ("system:operator_fees", "operator_fees", "credit", True),
    ("system:node_asset", "node_asset", "debit", True),
    ("system:node_fees_paid", "node_fees_paid", "debit", True),
    ("system:equity", "equity", "credit", False),
]

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('journal_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('memo', sa.Text(), server_default='', nullable=False),
    sa.Column('posted_at_us', sa.BigInteger(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_journal_entries_idempotency_key'))
    )
    op.create_table('ledger_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_ledger_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_head'))
    )
    op.create_table('signin_failures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signin_failures'))
    )
    with op.batch_alter_table('signin_failures', schema=None) as batch_op:
        batch_op.create_index('ix_signin_failures_address_at', ['address', 'at'], unique=False)
        batch_op.create_index('ix_signin_failures_email_at', ['email', 'at'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('lender', 'borrower', 'operator')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=96), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('normal_side', sa.String(length=6), nullable=False),
    sa.Column('non_negative', sa.Boolean(), nullable=False),
    sa.Column('balance_msat', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("normal_side IN ('debit', 'credit')", name=op.f('ck_accounts_normal_side')),
    sa.CheckConstraint('NOT non_negative OR balance_msat >= 0', name=op.f('ck_accounts_non_negative_balance')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_accounts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_accounts_code'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_user_id'), ['user_id'], unique=False)

    op.create_table('sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('address', sa.String(length=64), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('journal_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_msat', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_msat <> 0', name=op.f('ck_journal_lines_nonzero')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_journal_lines_account_id_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_journal_lines_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_lines'))
    )
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.create_index('ix_journal_lines_account_entry', ['account_id', 'entry_id'], unique=False)
        batch_op.create_index('ix_journal_lines_entry_position', ['entry_id', 'position'], unique=True)

    # The chain starts at the genesis hash; the system accounts always exist.
    now = datetime.now(timezone.utc)
    op.bulk_insert(
        sa.table("ledger_head", sa.column("id", sa.Integer), sa.column("last_entry_id", sa.BigInteger),
                 sa.column("last_hash", sa.String)),
        [{"id": 1, "last_entry_id": 0, "last_hash": "0" * 64}],
    )
    op.bulk_insert(
        sa.table("accounts", sa.column("code", sa.String), sa.column("kind", sa.String),
                 sa.column("normal_side", sa.String), sa.column("non_negative", sa.Boolean),
                 sa.column("balance_msat", sa.BigInteger), sa.column("created_at", sa.DateTime(timezone=True))),
        [
            {"code": code, "kind": kind, "normal_side": side, "non_negative": non_negative,
             "balance_msat": 0, "created_at": now}
            for code, kind, side, non_negative in SYSTEM_ACCOUNTS
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_lines_entry_position')
        batch_op.drop_index('ix_journal_lines_account_entry')

    op.drop_table('journal_lines')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_user_id'))

    op.drop_table('sessions')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_user_id'))

    op.drop_table('accounts')
    op.drop_table('users')
    with op.batch_alter_table('signin_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_signin_failures_email_at')
        batch_op.drop_index('ix_signin_failures_address_at')

    op.drop_table('signin_failures')
    op.drop_table('ledger_head')
    op.drop_table('journal_entries')
