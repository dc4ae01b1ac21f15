"""loan_offers: the BOLT12 offer the marketplace's node made for each loan

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'loan_offers',
        sa.Column('loan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.ForeignKey('loans.id'),
                  primary_key=True),
        sa.Column('offer_id', sa.String(64), nullable=False, unique=True),
        sa.Column('bolt12', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('loan_offers')
