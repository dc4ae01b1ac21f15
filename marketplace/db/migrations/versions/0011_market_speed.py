"""market speed: indexes for every filter and sort of the market list, and the market's version

The market list is cached per version (marketplace/services/market_cache.py). The version is one row,
bumped by a trigger on every insert, update or delete of a loan that is or was taking pledges, so no
write path can forget it. On PostgreSQL the trigger is a deferred constraint trigger: it runs at commit,
after every other lock of the transaction is taken, so two pledges cannot deadlock on the version row.
(SQLite has one writer at a time; plain triggers do.) Note for later migrations: a batch (copy-and-move)
alter of `loans` on SQLite drops these triggers; create them again with `create_market_triggers`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# (name, columns): one per sort and one per filter, each led by the status every market query fixes.
MARKET_INDEXES = (
    ("ix_loans_market_newest", ("status", "id")),
    ("ix_loans_market_rate", ("status", "annual_rate_bps", "id")),
    ("ix_loans_market_grade", ("status", "grade", "id")),
    ("ix_loans_market_purpose", ("status", "purpose", "id")),
    ("ix_loans_market_frequency", ("status", "frequency", "id")),
    ("ix_loans_market_term", ("status", "term_count", "id")),
)
FUNDED_INDEX = "ix_loans_market_funded"
FUNDED_EXPRESSION = "(CAST(funded_msat AS FLOAT) / CAST(amount_msat AS FLOAT))"  # PostgreSQL wants the brackets

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER tr_loans_market_insert AFTER INSERT ON loans WHEN NEW.status = 'funding' "
    "BEGIN UPDATE market_state SET version = version + 1 WHERE id = 1; END",
    "CREATE TRIGGER tr_loans_market_update AFTER UPDATE ON loans "
    "WHEN OLD.status = 'funding' OR NEW.status = 'funding' "
    "BEGIN UPDATE market_state SET version = version + 1 WHERE id = 1; END",
    "CREATE TRIGGER tr_loans_market_delete AFTER DELETE ON loans WHEN OLD.status = 'funding' "
    "BEGIN UPDATE market_state SET version = version + 1 WHERE id = 1; END",
)
_POSTGRES_TRIGGERS = (
    "CREATE FUNCTION market_state_bump() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE market_state SET version = version + 1 WHERE id = 1; RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER tr_loans_market_insert AFTER INSERT ON loans DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (NEW.status = 'funding') EXECUTE FUNCTION market_state_bump()",
    "CREATE CONSTRAINT TRIGGER tr_loans_market_update AFTER UPDATE ON loans DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (OLD.status = 'funding' OR NEW.status = 'funding') EXECUTE FUNCTION market_state_bump()",
    "CREATE CONSTRAINT TRIGGER tr_loans_market_delete AFTER DELETE ON loans DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (OLD.status = 'funding') EXECUTE FUNCTION market_state_bump()",
)


def create_market_triggers() -> None:
    for statement in (_POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS):
        op.execute(statement)


def upgrade() -> None:
    op.create_table('market_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_state'))
    )
    op.execute("INSERT INTO market_state (id, version) VALUES (1, 1)")
    for name, columns in MARKET_INDEXES:
        op.create_index(name, 'loans', list(columns), unique=False)
    # Soonest deadline first, ties newest first: the order the "time left" sort asks for, with no sort step.
    op.create_index('ix_loans_market_deadline', 'loans', ['status', 'funding_deadline', sa.text('id DESC')],
                    unique=False)
    op.create_index(FUNDED_INDEX, 'loans', ['status', sa.text(FUNDED_EXPRESSION), 'id'], unique=False)
    create_market_triggers()


def downgrade() -> None:
    for name in ("tr_loans_market_insert", "tr_loans_market_update", "tr_loans_market_delete"):
        op.execute(f"DROP TRIGGER {name} ON loans" if op.get_bind().dialect.name == "postgresql"
                   else f"DROP TRIGGER {name}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION market_state_bump()")
    op.drop_index(FUNDED_INDEX, table_name='loans')
    op.drop_index('ix_loans_market_deadline', table_name='loans')
    for name, _ in MARKET_INDEXES:
        op.drop_index(name, table_name='loans')
    op.drop_table('market_state')
