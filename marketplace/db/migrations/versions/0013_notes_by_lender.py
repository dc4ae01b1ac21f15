"""notes by lender, newest first: the portfolio's page of notes reads an index in order and stops

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""
from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_notes_lender_newest', 'notes', ['lender_id', 'id', 'status'])
    op.drop_index('ix_notes_lender_id', table_name='notes')


def downgrade() -> None:
    op.create_index('ix_notes_lender_id', 'notes', ['lender_id'])
    op.drop_index('ix_notes_lender_newest', table_name='notes')
