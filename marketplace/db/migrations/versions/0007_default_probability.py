"""default probability: each loan's PD over its remaining term; the day each installment was settled

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Grades become bands of a probability of default computed from published
priors and the borrower's own record (portfolio/pd.py); the daily job fills
`pd_ppm` for open loans and may regrade them. Installments settled before
this revision have no `settled_on`: they count as on time unless their loan
was ever more than the grace period late.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pd_ppm', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('origination_grade', sa.String(length=1), server_default='C', nullable=False))
        batch_op.add_column(sa.Column('origination_pd_ppm', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE loans SET origination_grade = grade")
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled_on', sa.Date(), nullable=True))
    op.create_table('grade_calibration',
    sa.Column('grade', sa.String(length=1), nullable=False),
    sa.Column('successes_months_milli', sa.BigInteger(), nullable=False),
    sa.Column('failures_milli', sa.BigInteger(), nullable=False),
    sa.Column('factor_ppm', sa.BigInteger(), nullable=False),
    sa.Column('loans', sa.Integer(), nullable=False),
    sa.Column('defaulted', sa.Integer(), nullable=False),
    sa.Column('updated_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('grade', name=op.f('pk_grade_calibration'))
    )


def downgrade() -> None:
    op.drop_table('grade_calibration')
    with op.batch_alter_table('installments', schema=None) as batch_op:
        batch_op.drop_column('settled_on')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('origination_pd_ppm')
        batch_op.drop_column('origination_grade')
        batch_op.drop_column('pd_ppm')
